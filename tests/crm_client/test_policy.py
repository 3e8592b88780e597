"""The retry policy and the circuit breaker, with pinned randomness and a fake clock."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_client import BreakerState, CircuitBreaker, RetryPolicy


class FixedRandom(random.Random):
    """A Random whose random() always answers ``value``."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


NO_JITTER = FixedRandom(0.0)
MOST_JITTER = FixedRandom(0.999999)


# ---------------------------------------------------------------- backoff


def test_the_wait_doubles_from_five_seconds_without_jitter() -> None:
    policy = RetryPolicy()
    assert [policy.next_delay(a, None, NO_JITTER) for a in range(1, 8)] == [
        5,
        10,
        20,
        40,
        80,
        160,
        320,
    ]


def test_the_wait_is_capped_at_one_hour() -> None:
    policy = RetryPolicy()
    assert policy.next_delay(11, None, NO_JITTER) == 3600
    assert policy.next_delay(50, None, NO_JITTER) == 3600
    assert policy.next_delay(100_000, None, NO_JITTER) == 3600  # no overflow


def test_jitter_only_shortens_the_wait_by_at_most_twenty_percent() -> None:
    policy = RetryPolicy()
    rng = random.Random(7)
    delays = [policy.next_delay(3, None, rng) for _ in range(500)]
    assert all(16 <= d <= 20 for d in delays)
    assert max(delays) - min(delays) > 3  # it does spread
    assert policy.next_delay(3, None, MOST_JITTER) == pytest.approx(16, abs=1e-4)


def test_the_same_seed_gives_the_same_waits() -> None:
    policy = RetryPolicy()
    first = [policy.next_delay(a, None, random.Random(1)) for a in range(1, 12)]
    second = [policy.next_delay(a, None, random.Random(1)) for a in range(1, 12)]
    assert first == second


def test_retry_after_is_a_floor() -> None:
    policy = RetryPolicy()
    assert policy.next_delay(1, 120, NO_JITTER) == 120
    assert policy.next_delay(8, 1, NO_JITTER) == 640  # the backoff is longer: it wins
    assert policy.next_delay(1, 0, NO_JITTER) == 5


def test_a_retry_after_beyond_the_cap_is_capped() -> None:
    policy = RetryPolicy()
    assert policy.next_delay(1, 86_400, NO_JITTER) == 3600
    assert policy.next_delay(1, float("inf"), NO_JITTER) == 3600


def test_the_policy_gives_up_after_twelve_attempts() -> None:
    policy = RetryPolicy()
    assert not any(policy.gives_up(a) for a in range(1, 12))
    assert policy.gives_up(12)
    assert policy.gives_up(13)
    assert RetryPolicy(max_attempts=1).gives_up(1)


def test_a_nonsensical_policy_is_refused_with_every_problem() -> None:
    with pytest.raises(ValueError) as caught:
        RetryPolicy(base_s=0, factor=0.5, max_attempts=0, jitter=2)
    message = str(caught.value)
    for problem in ("base_s", "factor", "max_attempts", "jitter"):
        assert problem in message


@given(
    attempt=st.integers(min_value=-5, max_value=10_000),
    retry_after=st.none() | st.floats(min_value=0, max_value=1e7, allow_nan=False),
    seed=st.integers(min_value=0, max_value=2**32),
    base=st.floats(min_value=0.01, max_value=100),
    factor=st.floats(min_value=1, max_value=10),
    jitter=st.floats(min_value=0, max_value=1),
)
def test_the_wait_always_lies_between_retry_after_and_the_cap(
    attempt: int,
    retry_after: float | None,
    seed: int,
    base: float,
    factor: float,
    jitter: float,
) -> None:
    policy = RetryPolicy(base_s=base, factor=factor, max_delay_s=3600, jitter=jitter)
    delay = policy.next_delay(attempt, retry_after, random.Random(seed))
    floor = min(retry_after or 0.0, policy.max_delay_s)
    assert floor <= delay <= policy.max_delay_s
    assert delay > 0


@given(attempt=st.integers(min_value=1, max_value=200))
def test_without_jitter_the_wait_never_shrinks_from_one_attempt_to_the_next(attempt: int) -> None:
    policy = RetryPolicy()
    assert policy.next_delay(attempt + 1, None, NO_JITTER) >= policy.next_delay(
        attempt, None, NO_JITTER
    )


# ---------------------------------------------------------------- breaker


def test_the_breaker_opens_after_five_failures_in_a_row() -> None:
    breaker = CircuitBreaker(clock=FakeClock())
    for _ in range(4):
        breaker.record_failure()
        assert breaker.state is BreakerState.CLOSED
        assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()


def test_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(clock=FakeClock())
    for _ in range(4):
        breaker.record_failure()
    breaker.record_success()
    for _ in range(4):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_after_the_pause_one_probe_at_a_time_goes_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, reset_after_s=30, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(29.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # nobody else while it is out
    assert not breaker.allow()


def test_a_successful_probe_closes_the_breaker() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=30, clock=clock)
    breaker.record_failure()
    clock.advance(30)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.allow() for _ in range(10))


def test_a_failed_probe_opens_the_breaker_for_another_pause() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=30, clock=clock)
    breaker.record_failure()
    clock.advance(30)
    assert breaker.allow()
    clock.advance(5)
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.advance(29)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()


def test_a_probe_that_never_reports_back_is_forgotten_after_a_pause() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=30, clock=clock)
    breaker.record_failure()
    clock.advance(30)
    assert breaker.allow()
    clock.advance(29)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()  # a new probe


def test_a_straggling_failure_does_not_extend_the_pause() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=30, clock=clock)
    breaker.record_failure()
    clock.advance(20)
    breaker.record_failure()  # a call that started before the breaker opened
    clock.advance(10)
    assert breaker.state is BreakerState.HALF_OPEN


def test_state_names_are_the_documented_strings() -> None:
    assert [s.value for s in BreakerState] == ["closed", "open", "half_open"]
    assert CircuitBreaker().state == "closed"
