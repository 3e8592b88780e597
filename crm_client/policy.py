"""The one retry policy for CRM delivery: exponential backoff with jitter, Retry-After, a cap.

Pure: no clock, no I/O; the random source is injected so tests can pin it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a failed CRM delivery again, and when to give up.

    ``attempt`` is always the number of attempts already made, counting the one that just
    failed (so it starts at 1). With the defaults the waits after attempts 1, 2, 3, … are
    about 5 s, 10 s, 20 s, … up to one hour, and the twelfth failed attempt gives up
    (roughly 2.4 hours after the first, when the CRM gives no ``Retry-After``).

    Jitter is proportional and only ever shortens a wait: the delay is drawn uniformly from
    ``[d * (1 - jitter), d]``. That spreads out many reports that failed together (a CRM
    outage) without ever exceeding ``max_delay_s``.

    ``Retry-After`` is a floor: the CRM is never asked again earlier than it said, up to
    ``max_delay_s``. A CRM asking for more than the cap is asked again at the cap; at worst
    it answers 429 once more, which costs one attempt, whereas obeying an unbounded
    Retry-After could park a report for days.
    """

    base_s: float = 5.0
    factor: float = 2.0
    max_delay_s: float = 3600.0
    max_attempts: int = 12
    jitter: float = 0.2

    def __post_init__(self) -> None:
        problems = []
        if not (self.base_s > 0 and math.isfinite(self.base_s)):
            problems.append(f"base_s must be a positive number, not {self.base_s!r}")
        if not (self.factor >= 1 and math.isfinite(self.factor)):
            problems.append(f"factor must be >= 1, not {self.factor!r}")
        if not (self.max_delay_s >= self.base_s and math.isfinite(self.max_delay_s)):
            problems.append(f"max_delay_s must be >= base_s, not {self.max_delay_s!r}")
        if self.max_attempts < 1:
            problems.append(f"max_attempts must be >= 1, not {self.max_attempts!r}")
        if not 0 <= self.jitter <= 1:
            problems.append(f"jitter must be within [0, 1], not {self.jitter!r}")
        if problems:
            raise ValueError("; ".join(problems))

    def backoff(self, attempt: int) -> float:
        """The un-jittered wait after ``attempt`` failed attempts, capped at ``max_delay_s``."""
        exponent = max(attempt, 1) - 1
        try:
            raw = self.base_s * self.factor**exponent
        except OverflowError:
            return self.max_delay_s
        return min(raw, self.max_delay_s)

    def next_delay(self, attempt: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Seconds to wait before the next attempt, after ``attempt`` failed attempts.

        Always within ``[min(retry_after_s or 0, max_delay_s), max_delay_s]``.
        """
        delay = self.backoff(attempt) * (1.0 - self.jitter * rng.random())
        if retry_after_s is not None and math.isfinite(retry_after_s) and retry_after_s > 0:
            delay = max(delay, retry_after_s)
        elif retry_after_s is not None and math.isinf(retry_after_s) and retry_after_s > 0:
            delay = self.max_delay_s
        return min(delay, self.max_delay_s)

    def gives_up(self, attempt: int) -> bool:
        """True when ``attempt`` failed attempts are all this policy allows."""
        return attempt >= self.max_attempts
