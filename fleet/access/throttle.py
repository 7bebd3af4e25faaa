"""Failed sign-ins slow the next ones down, per account and per address.

Without it a password can be guessed online as fast as argon2 verifies (several per second
per connection). After a few failures an account (or an address trying many accounts) must
wait, the wait doubling with each further failure up to a cap; a success clears the
account's count. Counts live in the API process: a fleet running several API workers
multiplies the allowance by their number, which still bounds guessing to a trickle.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

FREE_FAILURES = 5  # an account's typos before any wait
ADDRESS_FREE_FAILURES = 20  # one address trying many accounts
FIRST_WAIT_S = 30.0
MAX_WAIT_S = 15 * 60.0
FORGET_AFTER_S = 60 * 60.0  # a quiet hour clears the count
MAX_TRACKED = 100_000  # bounded memory whatever is sprayed at it


@dataclass
class _Count:
    failures: int = 0
    last: float = 0.0


@dataclass
class SignInThrottle:
    clock: Callable[[], float] = time.monotonic
    _counts: dict[str, _Count] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_s(self, email: str, address: str) -> float:
        """Seconds before a sign-in for `email` from `address` will be checked; 0: now."""
        with self._lock:
            return max(
                self._wait(f"account:{email.strip().lower()}", FREE_FAILURES),
                self._wait(f"address:{address}", ADDRESS_FREE_FAILURES),
            )

    def failed(self, email: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._counts) >= MAX_TRACKED:
                self._forget_quiet(now)
            for key in (f"account:{email.strip().lower()}", f"address:{address}"):
                count = self._counts.setdefault(key, _Count())
                if now - count.last > FORGET_AFTER_S:
                    count.failures = 0
                count.failures += 1
                count.last = now

    def succeeded(self, email: str) -> None:
        with self._lock:
            self._counts.pop(f"account:{email.strip().lower()}", None)

    def _wait(self, key: str, free: int) -> float:
        count = self._counts.get(key)
        now = self.clock()
        if count is None or count.failures < free or now - count.last > FORGET_AFTER_S:
            return 0.0
        wait = min(MAX_WAIT_S, FIRST_WAIT_S * 2 ** (count.failures - free))
        return max(0.0, count.last + wait - now)

    def _forget_quiet(self, now: float) -> None:
        for key in [k for k, c in self._counts.items() if now - c.last > FIRST_WAIT_S]:
            del self._counts[key]
        if len(self._counts) >= MAX_TRACKED:
            self._counts.clear()
