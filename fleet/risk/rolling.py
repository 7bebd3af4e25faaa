"""Incremental rolling-window rule engines behind :mod:`fleet.risk.rules`.

Readings arrive one at a time and per placement; recomputing a 12-hour or 7-day window from
the database on every reading would not scale, and a batch recompute must give exactly what the
live path reported. So each rule keeps a small state (the samples still inside its window plus
running sums) that is updated per sample, serialisable with ``to_dict``/``from_dict``, and the
batch path is the same fold over the same code.

Time model: a reading's value holds from its timestamp until the next reading, but for at most
``max_gap``; time not covered that way is unknown and never counts as exceeding a limit.
Timestamps must be timezone-aware and strictly increasing per rule.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fleet.risk.violation import Violation
from fleet.risk.violation import from_epoch as _dt


class OutOfOrderSample(ValueError):
    """A sample is not newer than the last one the state has seen.

    Late or duplicate readings cannot be folded into rolling state; recompute the placement's
    history with :func:`fleet.risk.rules.evaluate` instead.
    """


def _epoch(ts: datetime) -> float:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"timestamp {ts.isoformat()} has no timezone; pass an aware datetime")
    return ts.timestamp()


def _check_value(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"sample value must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class WindowRule:
    """Breached while the time above ``threshold`` within the trailing ``window`` exceeds
    ``limit`` (strictly: "more than 2 h in any 12 h")."""

    rule_id: str
    quantity: str
    threshold: float
    limit: timedelta
    window: timedelta
    max_gap: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if not timedelta(0) < self.limit < self.window:
            raise ValueError(f"{self.rule_id}: limit must be positive and shorter than window")
        if not timedelta(0) < self.max_gap < self.window:
            raise ValueError(f"{self.rule_id}: max_gap must be positive and shorter than window")

    def new_state(self) -> WindowState:
        return WindowState(self)

    def state_from_dict(self, data: dict[str, Any]) -> WindowState:
        return WindowState.from_dict(self, data)


@dataclass(frozen=True)
class MeanRule:
    """Breached while the time-weighted mean over the trailing ``window`` exceeds
    ``threshold`` and at least ``min_coverage`` of the window has data."""

    rule_id: str
    quantity: str
    threshold: float
    window: timedelta
    min_coverage: float = 0.75
    max_gap: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if not 0.0 < self.min_coverage <= 1.0:
            raise ValueError(f"{self.rule_id}: min_coverage must be in (0, 1]")
        if not timedelta(0) < self.max_gap < self.window:
            raise ValueError(f"{self.rule_id}: max_gap must be positive and shorter than window")

    def new_state(self) -> MeanState:
        return MeanState(self)

    def state_from_dict(self, data: dict[str, Any]) -> MeanState:
        return MeanState.from_dict(self, data)


class _StateBase:
    """Shared bookkeeping: last sample, segments in the window, the open episode."""

    __slots__ = ("_last_t", "_last_v", "_open", "_segs")

    rule: WindowRule | MeanRule

    def __init__(self) -> None:
        self._last_t: float | None = None
        self._last_v: float = 0.0
        # Closed segments (start, end, value), oldest first, in epoch seconds.
        self._segs: deque[tuple[float, float, float]] = deque()
        # Open episode: [since, breached_at, peak, time_above_seconds (window rules)].
        self._open: list[float] | None = None

    def _accept(self, ts: datetime, value: float) -> tuple[float, float]:
        t = _epoch(ts)
        v = _check_value(value)
        if self._last_t is not None and t <= self._last_t:
            raise OutOfOrderSample(
                f"{self.rule.rule_id}: sample at {ts.isoformat()} is not after "
                f"{_dt(self._last_t).isoformat()}; recompute the series in batch instead"
            )
        return (t, v)

    def _violation(
        self, opened: list[float], until: float | None, last_seen: float, peak: float
    ) -> Violation:
        since, breached = opened[0], opened[1]
        above = opened[3] if len(opened) > 3 else None
        return Violation(
            rule_id=self.rule.rule_id,
            quantity=self.rule.quantity,
            threshold=self.rule.threshold,
            since=_dt(since),
            breached_at=_dt(breached),
            until=None if until is None else _dt(until),
            last_seen=_dt(last_seen),
            peak=peak,
            time_above=None if above is None else timedelta(seconds=above),
        )

    @property
    def last_seen(self) -> datetime | None:
        """Time of the newest sample folded in."""
        return None if self._last_t is None else _dt(self._last_t)

    def episode(self) -> list[float] | None:
        """The open episode's record (a checkpoint to resume from), or ``None``."""
        return None if self._open is None else list(self._open)

    def resume_episode(self, record: list[float]) -> None:
        """Continue the open episode from a checkpoint of it: a window rebuilt from recent
        samples sees only the part of an episode that falls inside it."""
        if self._open is None or len(record) != len(self._open):
            raise ValueError(f"{self.rule.rule_id}: no open episode of that shape to resume")
        self._open = [float(x) for x in record]

    def open_violation(self) -> Violation | None:
        """The episode in progress, if the rule is breached as of the last sample."""
        if self._open is None or self._last_t is None:
            return None
        peak = self._open[2]
        if self._last_v > self.rule.threshold:
            peak = max(peak, self._last_v)
        return self._violation(self._open, None, self._last_t, peak)

    def _base_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule.rule_id,
            "last_t": self._last_t,
            "last_v": self._last_v,
            "segs": [list(s) for s in self._segs],
            "open": None if self._open is None else list(self._open),
        }

    def _load_base(self, data: dict[str, Any]) -> None:
        if data.get("rule_id") != self.rule.rule_id:
            raise ValueError(
                f"stored state is for rule {data.get('rule_id')!r}, not {self.rule.rule_id!r}"
            )
        last_t = data["last_t"]
        self._last_t = None if last_t is None else float(last_t)
        self._last_v = float(data["last_v"])
        self._segs = deque((float(s), float(e), float(v)) for s, e, v in data["segs"])
        opened = data["open"]
        self._open = None if opened is None else [float(x) for x in opened]


class WindowState(_StateBase):
    """Incremental state of a :class:`WindowRule`; only above-threshold segments are kept."""

    __slots__ = ("_total", "rule")

    def __init__(self, rule: WindowRule) -> None:
        super().__init__()
        self.rule: WindowRule = rule
        self._total = 0.0  # summed length of self._segs, unclipped

    def update(self, ts: datetime, value: float) -> list[Violation]:
        """Fold in one sample; returns the episodes this sample shows to have ended."""
        t, v = self._accept(ts, value)
        closed: list[Violation] = []
        if self._last_t is not None:
            p, pv = self._last_t, self._last_v
            q = min(t, p + self.rule.max_gap.total_seconds())
            if pv > self.rule.threshold:
                self._above(p, q, pv)
                if q < t:
                    self._not_above(p=q, q=t, closed=closed)
            else:
                self._not_above(p=p, q=t, closed=closed)
        self._last_t, self._last_v = t, v
        return closed

    # f(t) = time above threshold in (t - W, t]; with disjoint ordered segments only the
    # oldest can straddle the window start.
    def _evict(self, u: float) -> None:
        segs = self._segs
        while segs and segs[0][1] <= u:
            s, e, _ = segs.popleft()
            self._total -= e - s
        if not segs:
            self._total = 0.0

    def _f(self, u: float) -> float:
        if not self._segs:
            return 0.0
        return self._total - max(0.0, u - self._segs[0][0])

    def _above(self, p: float, q: float, v: float) -> None:
        w = self.rule.window.total_seconds()
        self._evict(p - w)
        if self._open is None:
            tb = self._breach_time(p, q)
            if tb is not None:
                u = tb - w
                since, peak = p, v
                for s, e, sv in self._segs:
                    if e > u:
                        since = min(since, max(s, u))
                        peak = max(peak, sv)
                limit = self.rule.limit.total_seconds()
                self._open = [since, tb, peak, limit + (q - tb)]
        else:
            self._open[2] = max(self._open[2], v)
            self._open[3] += q - p
        self._segs.append((p, q, v))
        self._total += q - p
        self._evict(q - w)

    def _breach_time(self, p: float, q: float) -> float | None:
        """First t in [p, q] where f reaches the limit while rising, or None.

        During an above segment f rises at rate 1, except while the window's tail is also
        dropping above-threshold time, when it is flat.
        """
        w = self.rule.window.total_seconds()
        limit = self.rule.limit.total_seconds()
        cur_t = p
        cur_f = self._f(p - w)
        if cur_f > limit:
            return p
        for s, e, _ in self._segs:
            if e + w <= cur_t:
                continue
            flat_from = max(s + w, cur_t)
            if flat_from >= q:
                break
            rise = flat_from - cur_t
            if cur_f + rise > limit:
                return cur_t + (limit - cur_f)
            cur_f += rise
            cur_t = min(e + w, q)
            if cur_t >= q:
                return None
        if cur_f + (q - cur_t) > limit:
            return cur_t + (limit - cur_f)
        return None

    def _not_above(self, *, p: float, q: float, closed: list[Violation]) -> None:
        w = self.rule.window.total_seconds()
        self._evict(p - w)
        if self._open is not None:
            tc = self._clear_time(p, q)
            if tc is not None:
                closed.append(self._violation(self._open, tc, tc, self._open[2]))
                self._open = None
        self._evict(q - w)

    def _clear_time(self, p: float, q: float) -> float | None:
        """First t in [p, q] where f has fallen back to the limit, or None."""
        w = self.rule.window.total_seconds()
        u_p = p - w
        need = self._f(u_p) - self.rule.limit.total_seconds()
        if need <= 0.0:
            return p
        if need > q - p + 1.0:
            # f falls at most at rate 1: it cannot reach the limit before q. Saves walking a
            # long window's segments for every sample of a long episode.
            return None
        for s, e, _ in self._segs:
            if e <= u_p:
                continue
            start = max(s, u_p)
            length = e - start
            if length >= need:
                t = start + need + w
                return t if t <= q else None
            need -= length
        return None

    def to_dict(self) -> dict[str, Any]:
        data = self._base_dict()
        data["total"] = self._total
        return data

    @classmethod
    def from_dict(cls, rule: WindowRule, data: dict[str, Any]) -> WindowState:
        state = cls(rule)
        state._load_base(data)
        state._total = float(data["total"])
        return state


class MeanState(_StateBase):
    """Incremental state of a :class:`MeanRule`; keeps every known segment in the window."""

    __slots__ = ("_sum_d", "_sum_vd", "rule")

    def __init__(self, rule: MeanRule) -> None:
        super().__init__()
        self.rule: MeanRule = rule
        self._sum_vd = 0.0
        self._sum_d = 0.0

    def update(self, ts: datetime, value: float) -> list[Violation]:
        """Fold in one sample; returns the episodes this sample shows to have ended.

        The rule is evaluated at the end of each known segment and at the end of a gap,
        so breach and end times have the resolution of the sampling interval.
        """
        t, v = self._accept(ts, value)
        closed: list[Violation] = []
        if self._last_t is not None:
            p, pv = self._last_t, self._last_v
            q = min(t, p + self.rule.max_gap.total_seconds())
            self._segs.append((p, q, pv))
            self._sum_vd += pv * (q - p)
            self._sum_d += q - p
            if self._open is not None:
                self._open[2] = max(self._open[2], pv)
            self._evaluate(q, closed)
            if q < t:
                self._evaluate(t, closed)
        self._last_t, self._last_v = t, v
        return closed

    def _evaluate(self, now: float, closed: list[Violation]) -> None:
        w = self.rule.window.total_seconds()
        u = now - w
        segs = self._segs
        while segs and segs[0][1] <= u:
            s, e, sv = segs.popleft()
            self._sum_vd -= sv * (e - s)
            self._sum_d -= e - s
        if not segs:
            self._sum_vd = self._sum_d = 0.0
            known = 0.0
            mean = 0.0
        else:
            s0, _, v0 = segs[0]
            clip = max(0.0, u - s0)
            known = self._sum_d - clip
            mean = (self._sum_vd - v0 * clip) / known if known > 0.0 else 0.0
        breached = known >= self.rule.min_coverage * w and mean > self.rule.threshold
        if breached and self._open is None:
            since = max(segs[0][0], u)
            peak = max(sv for _, _, sv in segs)
            self._open = [since, now, peak]
        elif not breached and self._open is not None:
            closed.append(self._violation(self._open, now, now, self._open[2]))
            self._open = None

    def to_dict(self) -> dict[str, Any]:
        data = self._base_dict()
        data["sum_vd"] = self._sum_vd
        data["sum_d"] = self._sum_d
        return data

    @classmethod
    def from_dict(cls, rule: MeanRule, data: dict[str, Any]) -> MeanState:
        state = cls(rule)
        state._load_base(data)
        state._sum_vd = float(data["sum_vd"])
        state._sum_d = float(data["sum_d"])
        return state
