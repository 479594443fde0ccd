from __future__ import annotations

import pytest

from cutover.parsers.bind_key import KeyFileInvalid, parse_key_file

TSIG_KEYGEN = """key "update-key" {
\talgorithm hmac-sha256;
\tsecret "uMzUxuNJ/+eUW7sxG95d4/rTfYaKHWSvuSnOjawUR+c=";
};
"""


def test_tsig_keygen_output_parses():
    key = parse_key_file(TSIG_KEYGEN)
    assert (key.name, key.algorithm) == ("update-key", "hmac-sha256")
    assert key.secret == "uMzUxuNJ/+eUW7sxG95d4/rTfYaKHWSvuSnOjawUR+c="


def test_comments_and_one_line_layout_are_accepted():
    text = ('# made by hand\nkey ddns-key.example.org { algorithm HMAC-SHA512; '
            'secret "c2VjcmV0"; }; // done\n')
    key = parse_key_file(text)
    assert (key.name, key.algorithm) == ("ddns-key.example.org", "hmac-sha512")


def test_a_double_slash_inside_the_secret_is_not_a_comment():
    key = parse_key_file('key "k" {\n\talgorithm hmac-sha256;\n\tsecret "ab//cd/+EF==";\n};\n')
    assert key.secret == "ab//cd/+EF=="


def test_the_secret_never_shows_in_repr():
    assert "uMzU" not in repr(parse_key_file(TSIG_KEYGEN))


@pytest.mark.parametrize(("text", "message"), [
    ("", "no key"),
    ('key "k" { secret "c2VjcmV0"; };', "algorithm"),
    ('key "k" { algorithm rot13; secret "c2VjcmV0"; };', "algorithm 'rot13'"),
    ('key "k" { algorithm hmac-sha256; };', "no secret"),
    ('key "k" { algorithm hmac-sha256; secret "not base64!"; };', "not base64"),
])
def test_malformed_key_files_say_what_is_wrong(text, message):
    with pytest.raises(KeyFileInvalid, match=message):
        parse_key_file(text)
