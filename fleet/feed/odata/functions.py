"""The SensorThings v1.1 built-in functions: names, arity and argument types."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class T(Enum):
    """Static types used to check expressions before they are run."""

    STRING = "string"
    INT = "integer"
    DECIMAL = "decimal"
    BOOL = "boolean"
    DATETIME = "date-time"
    DATE = "date"
    TIME = "time"
    DURATION = "duration"
    GEO = "geometry"
    NULL = "null"
    ANY = "any"


NUMERIC = frozenset({T.INT, T.DECIMAL})
STR = frozenset({T.STRING})
NUM = NUMERIC
DT = frozenset({T.DATETIME})
DT_OR_DATE = frozenset({T.DATETIME, T.DATE})
DT_OR_TIME = frozenset({T.DATETIME, T.TIME})
GEO = frozenset({T.GEO})


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    params: tuple[frozenset[T], ...]
    returns: T | None  # None: same type as the first argument
    optional: int = 0  # how many trailing parameters may be left out
    category: str = "string"

    @property
    def min_args(self) -> int:
        return len(self.params) - self.optional

    @property
    def max_args(self) -> int:
        return len(self.params)

    def arity_text(self) -> str:
        if self.min_args == self.max_args:
            n = self.max_args
            return f"{n} argument{'s' if n != 1 else ''}"
        return f"{self.min_args} to {self.max_args} arguments"


def _specs() -> dict[str, FunctionSpec]:
    specs = [
        FunctionSpec("substringof", (STR, STR), T.BOOL),
        FunctionSpec("contains", (STR, STR), T.BOOL),
        FunctionSpec("endswith", (STR, STR), T.BOOL),
        FunctionSpec("startswith", (STR, STR), T.BOOL),
        FunctionSpec("length", (STR,), T.INT),
        FunctionSpec("indexof", (STR, STR), T.INT),
        FunctionSpec("substring", (STR, NUM, NUM), T.STRING, optional=1),
        FunctionSpec("tolower", (STR,), T.STRING),
        FunctionSpec("toupper", (STR,), T.STRING),
        FunctionSpec("trim", (STR,), T.STRING),
        FunctionSpec("concat", (STR, STR), T.STRING),
    ]
    for name in ("year", "month", "day"):
        specs.append(FunctionSpec(name, (DT_OR_DATE,), T.INT, category="date"))
    for name in ("hour", "minute", "second"):
        specs.append(FunctionSpec(name, (DT_OR_TIME,), T.INT, category="date"))
    specs += [
        FunctionSpec("fractionalseconds", (DT_OR_TIME,), T.DECIMAL, category="date"),
        FunctionSpec("date", (DT,), T.DATE, category="date"),
        FunctionSpec("time", (DT,), T.TIME, category="date"),
        FunctionSpec("totaloffsetminutes", (DT,), T.INT, category="date"),
        FunctionSpec("now", (), T.DATETIME, category="date"),
        FunctionSpec("mindatetime", (), T.DATETIME, category="date"),
        FunctionSpec("maxdatetime", (), T.DATETIME, category="date"),
    ]
    for name in ("round", "floor", "ceiling"):
        specs.append(FunctionSpec(name, (NUM,), None, category="math"))
    specs += [
        FunctionSpec("geo.distance", (GEO, GEO), T.DECIMAL, category="geo"),
        FunctionSpec("geo.length", (GEO,), T.DECIMAL, category="geo"),
        FunctionSpec("geo.intersects", (GEO, GEO), T.BOOL, category="geo"),
        FunctionSpec("st_relate", (GEO, GEO, STR), T.BOOL, category="geo"),
    ]
    for name in (
        "st_equals",
        "st_disjoint",
        "st_touches",
        "st_within",
        "st_overlaps",
        "st_crosses",
        "st_intersects",
        "st_contains",
    ):
        specs.append(FunctionSpec(name, (GEO, GEO), T.BOOL, category="geo"))
    return {spec.name: spec for spec in specs}


FUNCTIONS: dict[str, FunctionSpec] = _specs()
