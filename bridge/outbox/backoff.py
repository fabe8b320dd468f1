"""Retry delays: exponential backoff with jitter. Pure."""

from __future__ import annotations

import random


def delay_seconds(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before retry number `attempt` (1-based): base·2^(attempt-1), capped, then "equal jitter"
    (half fixed, half random) so a burst of failures does not retry in lock-step."""
    exponential = min(cap, base * (2 ** max(0, attempt - 1)))
    return exponential / 2 + (rng or random).uniform(0, exponential / 2)
