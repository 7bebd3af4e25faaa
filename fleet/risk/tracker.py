"""Incremental risk state of one sensor placement, stepped one derived hour at a time.

A placement's whole risk picture is: the VTT mould state, the rule monitor (rolling windows),
the rule episodes that ended recently (still evidence), and which of the last week's hours
were above the lowest isopleth for mould. All of it serialises to a small JSON document, so
the fleet stores it per placement and continues from it when the next hour arrives instead of
recomputing history. Recomputing history is the same fold from an empty tracker.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet.risk import level, lim, rules, vtt
from fleet.risk.hourly import DerivedHour
from fleet.risk.rolling import OutOfOrderSample
from fleet.risk.violation import Violation

#: Closed rule episodes stay evidence for this long after they ended.
EPISODE_MEMORY = timedelta(days=14)
#: The LIM share is taken over the last week of hours with data.
LIM_WINDOW_HOURS = 168
STATE_VERSION = 1


def warmup_span(rule_set: Sequence[rules.Rule]) -> timedelta:
    """How much hourly history rebuilds every rule's rolling window exactly."""
    return max(r.window for r in rule_set) + timedelta(hours=1)


class PlacementTracker:
    """Mould index, rule monitor, recent episodes and LIM flags of one placement."""

    __slots__ = ("last_hour", "lim_flags", "monitor", "mould", "recent", "rules", "sensitivity")

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
    ) -> None:
        self.rules = tuple(rule_set) if rule_set is not None else rules.default_rules()
        self.sensitivity = sensitivity
        self.mould = mould or vtt.MouldState()
        self.monitor = monitor or rules.Monitor(self.rules)
        self.recent: list[Violation] = list(recent)
        self.lim_flags: deque[bool] = deque(lim_flags, maxlen=LIM_WINDOW_HOURS)
        self.last_hour = last_hour

    def step(self, hour: DerivedHour) -> float:
        """Fold in one hour; returns the mould index after it.

        The mould index is stepped on *surface* conditions, where mould grows; the ADF rules
        read the room RH, BS 5250 the surface RH, and the CO2 rules CO2 when there is any.
        """
        if self.last_hour is not None and hour.hour <= self.last_hour:
            raise OutOfOrderSample(
                f"hour {hour.hour.isoformat()} is not after {self.last_hour.isoformat()}; "
                "recompute the placement from that hour instead"
            )
        self.mould = vtt.step(
            self.mould, hour.surface_temperature, hour.surface_rh, sensitivity=self.sensitivity
        )
        self.observe(hour.hour, hour.humidity, hour.surface_rh, hour.co2, hour.surface_temperature)
        return self.mould.m

    def observe(
        self,
        at: datetime,
        room_rh: float,
        surface_rh: float,
        co2: float | None,
        surface_t: float,
    ) -> None:
        """Feed the rules and the LIM window without stepping the mould index.

        Used on its own to rebuild rolling windows from stored hours before a recompute.
        """
        closed = self.monitor.update(rules.Quantity.ROOM_RH, at, room_rh)
        closed += self.monitor.update(rules.Quantity.SURFACE_RH, at, surface_rh)
        if co2 is not None:
            closed += self.monitor.update(rules.Quantity.CO2, at, co2)
        self.recent.extend(closed)
        horizon = at - EPISODE_MEMORY
        self.recent = [v for v in self.recent if v.until is None or v.until >= horizon]
        self.lim_flags.append(lim.check(surface_t, surface_rh).exceeded)
        self.last_hour = at

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
        )
