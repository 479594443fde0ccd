"""--max-msgs-per-s and --max-bandwidth: the throttle asks for the pause the budget implies."""

from cutover.mailsync.engine import Throttle


def test_message_rate_pauses_until_the_budget_allows():
    naps: list[float] = []
    throttle = Throttle(10, None, clock=lambda: 100.0, sleep=naps.append)
    throttle.take(5, 1000)
    throttle.take(5, 1000)
    assert naps == [0.5, 1.0]


def test_bandwidth_and_rate_take_the_stricter_limit():
    naps: list[float] = []
    throttle = Throttle(100, 1000, clock=lambda: 0.0, sleep=naps.append)
    throttle.take(1, 4000)
    assert naps == [4.0]


def test_no_limits_never_pause():
    naps: list[float] = []
    Throttle(None, None, clock=lambda: 0.0, sleep=naps.append).take(10**6, 10**9)
    assert naps == []
