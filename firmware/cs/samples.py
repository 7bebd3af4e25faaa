"""Bounded in-RAM queue of readings waiting for a PUBACK.

When full the oldest reading is evicted and counted (reported as `evicted` in
health), so an outage costs the oldest data, never the heap.
"""


class SampleQueue:
    def __init__(self, capacity: int = 96) -> None:
        self.capacity = capacity
        self._items: list = []  # (unix_time, temperature, humidity)
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._items)

    def push(self, ts: int, temperature: float, humidity: float) -> None:
        if len(self._items) >= self.capacity:
            self._items.pop(0)
            self.evicted += 1
        self._items.append((ts, temperature, humidity))

    def peek(self, n: int) -> list:
        return self._items[:n]

    def drop(self, n: int) -> None:
        del self._items[:n]
