"""Per-client token buckets for the feed, so one downstream client cannot starve the others.

In-process on purpose: each fleet process limits its own traffic. Several processes behind a
load balancer each allow the configured rate; put a limit in the proxy for a global cap.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    rate_per_s: float  # sustained requests per second
    burst: int  # requests allowed at once after a quiet spell


PUBLIC_LIMIT = Limit(rate_per_s=5.0, burst=60)  # per IP address, no token
TOKEN_LIMIT = Limit(rate_per_s=50.0, burst=300)  # per API token


class RateLimiter:
    def __init__(
        self,
        *,
        public: Limit = PUBLIC_LIMIT,
        token: Limit = TOKEN_LIMIT,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.public = public
        self.token = token
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, *, authenticated: bool) -> float:
        """Spend one request; 0 when allowed, else the seconds until one is available."""
        limit = self.token if authenticated else self.public
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(limit.burst), now))
            tokens = min(float(limit.burst), tokens + (now - last) * limit.rate_per_s)
            if tokens >= 1.0:
                tokens -= 1.0
                wait = 0.0
            else:
                wait = (1.0 - tokens) / limit.rate_per_s
            self._buckets[key] = (tokens, now)
            # Forget the least recently seen clients so memory stays bounded.
            while len(self._buckets) > self._max_clients:
                self._buckets.popitem(last=False)
        return wait


def retry_after(wait_s: float) -> str:
    return str(max(1, math.ceil(wait_s)))
