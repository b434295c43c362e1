"""Throttling of failed authentication per client address.

After `limit` failures (unknown, revoked or expired bearer tokens; wrong tokens on the
sign-in form) within `window_s`, further failures from the address are answered 429 with
Retry-After instead of 401, and logged. A valid credential from a throttled address is
still let in: everyone behind one NAT, VPN or proxy shares an address, and one guesser
must not lock them all out. The state is per process and bounded: with
`fairdraft serve --workers N` an address gets up to N times the limit, which still turns
guessing a 256-bit token from hopeless into hopeless and slow; what it is for is to stop a
script hammering the database with lookups and to make the attempt visible in the logs.
"""

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class FailureThrottle:
    def __init__(
        self,
        *,
        limit: int,
        window_s: float,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_addresses = max_addresses
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int:
        """Seconds until the address may try again; 0 when it is not throttled."""
        with self._lock:
            failures = self._recent(address)
            if len(failures) < self.limit:
                return 0
            return max(1, int(failures[0] + self.window_s - self._clock()) + 1)

    def failed(self, address: str) -> None:
        with self._lock:
            failures = self._recent(address)
            failures.append(self._clock())
            self._failures[address] = failures
            self._failures.move_to_end(address)
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)

    def _recent(self, address: str) -> deque[float]:
        # at most `limit` kept per address: the throttle holds while the limit-th most
        # recent failure is inside the window, and memory stays bounded under a flood
        failures = self._failures.get(address, deque(maxlen=self.limit))
        cutoff = self._clock() - self.window_s
        while failures and failures[0] <= cutoff:
            failures.popleft()
        return failures
