from cutover.inventory.traits import is_automated, parse_headers, traits_from_headers


def test_parse_headers_reads_only_the_header_block():
    raw = b"From: a@x.org\r\nSubject: DATA_REQUEST 1\r\n\r\nBody: not a header\r\n"
    assert parse_headers(raw) == {"from": "a@x.org", "subject": "DATA_REQUEST 1"}


def test_automated_senders_are_recognised():
    assert is_automated({"auto-submitted": "auto-generated"})
    assert is_automated({"precedence": "bulk"})
    assert is_automated({"from": "Station AKS01 <station-aks01@example.org>"})
    assert is_automated({"return-path": "<>"})
    assert not is_automated({"from": "Alice <alice@example.org>", "auto-submitted": "no"})


def test_traits_count_shares_over_the_sample():
    samples = [{"from": "noreply@x.org", "subject": "BEGIN IMS2.0"}] * 9 + [
        {"from": "bob@x.org", "subject": "lunch?"}]
    traits = traits_from_headers(samples)
    assert (traits["sampled"], traits["automated_share"], traits["subject_share"]) == (
        10, 0.9, 0.9)
    assert traits["subjects"][-1] == "lunch?"


def test_empty_sample_has_no_shares():
    assert traits_from_headers([]) == {"sampled": 0}
