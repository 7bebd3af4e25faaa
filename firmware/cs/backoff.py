"""Reconnect policy: exponential backoff with jitter and a cap (kept apart from transports)."""

import random


class Backoff:
    def __init__(self, base_ms: int = 1000, cap_ms: int = 300000) -> None:
        self.base_ms = base_ms
        self.cap_ms = cap_ms
        self.attempt = 0

    def reset(self) -> None:
        self.attempt = 0

    def next_ms(self) -> int:
        """Delay before the next attempt: "equal jitter" keeps at least half the step,
        so a fleet that lost its broker at once does not return in lockstep."""
        step = self.base_ms << min(self.attempt, 20)
        if step > self.cap_ms:
            step = self.cap_ms
        self.attempt += 1
        half = step // 2
        return half + random.getrandbits(16) * (step - half) // 65535
