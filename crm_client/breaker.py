"""A circuit breaker for the CRM: stop hammering a CRM that is down, probe it one call at a time.

Pure: the clock is injected. The caller decides what counts as a failure; kanal counts
``RetryLater`` outcomes (5xx, 429, timeouts, connection errors) and never ``Rejected`` ones,
which say something about one report, not about the CRM's health.

Concurrency is limited with a plain ``asyncio.Semaphore``; no class is needed for that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed → (``failure_threshold`` failures in a row) → open → (``reset_after_s``) → half-open.

    Half-open lets exactly one probe through at a time: its success closes the breaker, its
    failure opens it again for another ``reset_after_s``. A probe that never reports back
    (its task was cancelled) is forgotten after ``reset_after_s`` so the breaker cannot
    stay stuck half-open.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, not {failure_threshold!r}")
        if reset_after_s < 0:
            raise ValueError(f"reset_after_s must be >= 0, not {reset_after_s!r}")
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_started_at: float | None = None

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.reset_after_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        """May a call go to the CRM now? In half-open, True for one probe at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            return False
        now = self._clock()
        if self._probe_started_at is not None and now - self._probe_started_at < self.reset_after_s:
            return False
        self._probe_started_at = now
        return True

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probe_started_at = None

    def record_failure(self) -> None:
        self._failures += 1
        if self._opened_at is not None:
            # A failed probe opens the breaker for another period; a straggler that
            # started before the breaker opened does not extend the current one.
            if self.state is BreakerState.HALF_OPEN:
                self._opened_at = self._clock()
            self._probe_started_at = None
            return
        if self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            self._probe_started_at = None

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(state={self.state.value!r}, failures={self._failures}, "
            f"threshold={self.failure_threshold}, reset_after_s={self.reset_after_s})"
        )
