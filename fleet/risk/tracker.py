"""Incremental risk state of one sensor placement, stepped one derived hour at a time.

A placement's whole risk picture is: the VTT mould state, the rule monitor (rolling windows),
the rule episodes that ended recently (still evidence), and which of the last week's hours
were above the lowest isopleth for mould. All of it serialises to a small JSON document, so
the fleet stores it per placement and continues from it when the next hour arrives instead of
recomputing history. Recomputing history is the same fold from an empty tracker.

The mould index, the LIM flags and the mean rules (BS 5250) step on hourly values. The
time-above rules on room RH and CO2 (ADF 2006, CO2 bands) are fed the hour's raw samples in
time order (:class:`fleet.risk.hourly.HourSamples`), so the time they count is measured
time: a 50-minute spell at 95 % counts 50 minutes above 90 % even when the hour's mean is 80 %,
and an hour with 25 minutes above 70 % counts 25 minutes, not an hour.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet.risk import level, lim, rules, vtt
from fleet.risk.hourly import HOUR, DerivedHour, HourSamples
from fleet.risk.rolling import MeanRule, OutOfOrderSample, WindowRule
from fleet.risk.violation import Violation

#: Closed rule episodes stay evidence for this long after they ended.
EPISODE_MEMORY = timedelta(days=14)
#: The LIM share is taken over the last week of hours with data.
LIM_WINDOW_HOURS = 168
#: Processed hours for which each open episode's record is kept with the state, so that a
#: recompute from within them (the default late-data look-back) resumes an episode that began
#: before its rebuilt windows exactly, instead of dating it from the rebuilt window.
MARK_HOURS = 72
#: 2: the time-above rules read raw samples (1 fed them hourly means; such a state is
#: recomputed, see :func:`fleet.risk.service.update.plan_update`).
STATE_VERSION = 2
#: The quantities whose time-above rules are fed raw samples.
SAMPLED = (rules.Quantity.ROOM_RH, rules.Quantity.CO2)


def reads_samples(rule: rules.Rule) -> bool:
    """Whether ``rule`` is fed raw samples rather than hourly values."""
    return isinstance(rule, WindowRule) and rule.quantity in SAMPLED


def sample_warmup(rule_set: Sequence[rules.Rule]) -> timedelta:
    """How much raw history before a point rebuilds the sample-fed windows exactly from one
    ``max_gap`` before it on (a sample holds into the window for up to ``max_gap``)."""
    spans = [r.window + 2 * r.max_gap for r in rule_set if reads_samples(r)]
    return max(spans, default=timedelta(0))


def warmup_span(rule_set: Sequence[rules.Rule]) -> timedelta:
    """How much hourly history rebuilds the hour-fed rules' windows and the LIM flags exactly."""
    spans = [r.window + r.max_gap for r in rule_set if not reads_samples(r)]
    return max([*spans, LIM_WINDOW_HOURS * HOUR])


class PlacementTracker:
    """Mould index, rule monitor, recent episodes and LIM flags of one placement."""

    __slots__ = (
        "last_hour",
        "lim_flags",
        "marks",
        "monitor",
        "mould",
        "recent",
        "rules",
        "sensitivity",
    )

    def __init__(
        self,
        *,
        rule_set: Sequence[rules.Rule] | None = None,
        sensitivity: vtt.Sensitivity = vtt.Sensitivity.SENSITIVE,
        mould: vtt.MouldState | None = None,
        monitor: rules.Monitor | None = None,
        recent: Sequence[Violation] = (),
        lim_flags: Sequence[bool] = (),
        last_hour: datetime | None = None,
        marks: dict[str, list[list[float]]] | None = None,
    ) -> None:
        self.rules = tuple(rule_set) if rule_set is not None else rules.default_rules()
        self.sensitivity = sensitivity
        self.mould = mould or vtt.MouldState()
        self.monitor = monitor or rules.Monitor(self.rules)
        self.recent: list[Violation] = list(recent)
        self.lim_flags: deque[bool] = deque(lim_flags, maxlen=LIM_WINDOW_HOURS)
        self.last_hour = last_hour
        # Rule id -> [hour (epoch s), *open episode record after that hour], oldest first.
        self.marks: dict[str, list[list[float]]] = marks or {}

    def step(self, hour: DerivedHour, samples: HourSamples | None = None) -> float:
        """Fold in one hour and its raw samples; returns the mould index after it.

        The mould index is stepped on *surface* conditions, where mould grows; the ADF rules
        read the room RH, BS 5250 the surface RH, and the CO2 rules CO2 when there is any.
        Without ``samples`` the hour's means stand for the whole hour.
        """
        if self.last_hour is not None and hour.hour <= self.last_hour:
            raise OutOfOrderSample(
                f"hour {hour.hour.isoformat()} is not after {self.last_hour.isoformat()}; "
                "recompute the placement from that hour instead"
            )
        self.mould = vtt.step(
            self.mould, hour.surface_temperature, hour.surface_rh, sensitivity=self.sensitivity
        )
        if samples is None:
            co2 = () if hour.co2 is None else ((hour.hour, hour.co2),)
            samples = HourSamples(room_rh=((hour.hour, hour.humidity),), co2=co2)
        self.feed_samples(samples)
        self.observe(hour.hour, hour.humidity, hour.surface_rh, hour.co2, hour.surface_temperature)
        self._mark(hour.hour)
        return self.mould.m

    def _mark(self, at: datetime) -> None:
        """Checkpoint the open episodes as of the end of hour ``at``."""
        stamp = at.timestamp()
        horizon = stamp - MARK_HOURS * 3600.0
        for rule_id, record in self.monitor.episodes().items():
            self.marks.setdefault(rule_id, []).append([stamp, *record])
        for rule_id, marks in list(self.marks.items()):
            while marks and marks[0][0] <= horizon:  # oldest first: one a step, if any
                del marks[0]
            if not marks:
                del self.marks[rule_id]

    def feed_samples(self, samples: HourSamples) -> None:
        """Feed an hour's raw room RH and CO2 samples to the time-above rules."""
        monitor, closed = self.monitor, []
        for ts, value in samples.room_rh:
            closed += monitor.update(rules.Quantity.ROOM_RH, ts, value, only=WindowRule)
        for ts, value in samples.co2:
            closed += monitor.update(rules.Quantity.CO2, ts, value, only=WindowRule)
        self.recent.extend(closed)

    def observe(
        self,
        at: datetime,
        room_rh: float,
        surface_rh: float,
        co2: float | None,
        surface_t: float,
    ) -> None:
        """Feed an hour's values to the hour-fed rules and the LIM window without stepping
        the mould index (the sample-fed rules get :meth:`feed_samples`)."""
        monitor = self.monitor
        closed = monitor.update(rules.Quantity.ROOM_RH, at, room_rh, only=MeanRule)
        closed += monitor.update(rules.Quantity.SURFACE_RH, at, surface_rh)
        if co2 is not None:
            closed += monitor.update(rules.Quantity.CO2, at, co2, only=MeanRule)
        self.recent.extend(closed)
        horizon = at - EPISODE_MEMORY
        self.recent = [v for v in self.recent if v.until is None or v.until >= horizon]
        self.lim_flags.append(lim.check(surface_t, surface_rh).exceeded)
        self.last_hour = at

    @classmethod
    def rebuild(
        cls,
        *,
        rule_set: Sequence[rules.Rule],
        sensitivity: vtt.Sensitivity,
        mould: vtt.MouldState,
        hours: Iterable[tuple[datetime, float, float, float | None, float]],
        samples: Iterable[HourSamples],
        stored: Sequence[Violation],
        before: datetime,
        marks: dict[str, list[list[float]]] | None = None,
    ) -> PlacementTracker:
        """The tracker as it stood before ``before``, from the stored hours before it
        (``(hour, room RH, surface RH, CO2, surface temperature)``, at least
        :func:`warmup_span`), the raw samples of the processed hours before it (at least
        :func:`sample_warmup`) and the episodes stored with the placement's state.

        The rebuilt windows only see part of the past, so episodes they closed may be cut
        short: those come from ``stored`` instead (they ended before the point, so data after
        it cannot change them), and an episode still open is resumed from its checkpoint in
        the stored ``marks`` for the last hour before the point, when there is one.
        """
        tracker = cls(rule_set=rule_set, sensitivity=sensitivity, mould=mould)
        for at, room_rh, surface_rh, co2, surface_t in hours:
            tracker.observe(at, room_rh, surface_rh, co2, surface_t)
        for hour_samples in samples:
            tracker.feed_samples(hour_samples)
        kept = []
        for v in stored:
            # A rule with nothing rebuilt closes nothing it had open: keep all it closed.
            seen = tracker.monitor.last_seen(v.rule_id) or before
            if v.until is not None and v.until <= seen:
                kept.append(v)
        tracker.recent = kept
        cut = before.timestamp()
        earlier = {r: [m for m in ms if m[0] < cut] for r, ms in (marks or {}).items()}
        tracker.marks = {r: ms for r, ms in earlier.items() if ms}
        if tracker.last_hour is not None:
            last = tracker.last_hour.timestamp()
            for rule_id in tracker.monitor.episodes():
                for mark in tracker.marks.get(rule_id, ()):
                    if mark[0] == last:
                        tracker.monitor.resume(rule_id, mark[1:])
        return tracker

    def violations(self) -> list[Violation]:
        """Recent closed episodes and the ones in progress."""
        return [*self.recent, *self.monitor.open_violations()]

    def lim_fraction(self) -> float | None:
        if not self.lim_flags:
            return None
        return sum(self.lim_flags) / len(self.lim_flags)

    def assess(self) -> level.Assessment:
        return level.assess(
            level.Indicators(
                mould_index=self.mould.m if self.last_hour is not None else None,
                violations=self.violations(),
                lim_fraction=self.lim_fraction(),
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "sensitivity": self.sensitivity.value,
            "mould": self.mould.to_dict(),
            "monitor": self.monitor.to_dict(),
            "recent": [v.to_dict() for v in self.recent],
            "lim": "".join("1" if f else "0" for f in self.lim_flags),
            "last_hour": None if self.last_hour is None else self.last_hour.isoformat(),
            "marks": self.marks,
        }

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], *, rule_set: Sequence[rules.Rule] | None = None
    ) -> PlacementTracker:
        if data.get("v") != STATE_VERSION:
            raise ValueError(
                f"stored risk state version {data.get('v')!r} is not {STATE_VERSION}; "
                "recompute the placement"
            )
        chosen = tuple(rule_set) if rule_set is not None else rules.default_rules()
        last = data.get("last_hour")
        return cls(
            rule_set=chosen,
            sensitivity=vtt.Sensitivity(data["sensitivity"]),
            mould=vtt.MouldState.from_dict(data["mould"]),
            monitor=rules.Monitor.from_dict(data["monitor"], chosen),
            recent=[Violation.from_dict(v) for v in data["recent"]],
            lim_flags=[c == "1" for c in data["lim"]],
            last_hour=None if last is None else datetime.fromisoformat(last).astimezone(UTC),
            marks=stored_marks(data),
        )


def stored_marks(data: dict[str, Any] | None) -> dict[str, list[list[float]]]:
    """The episode checkpoints of a stored state (none when absent or unreadable)."""
    raw = (data or {}).get("marks")
    if not isinstance(raw, dict):
        return {}
    try:
        return {str(r): [[float(x) for x in m] for m in ms] for r, ms in raw.items()}
    except (TypeError, ValueError):
        return {}
