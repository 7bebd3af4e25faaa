"""Hypothesis strategies for filter ASTs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from fleet.feed.odata import nodes as n
from fleet.feed.odata.functions import FUNCTIONS
from fleet.feed.odata.lexer import INT64_MAX, INT64_MIN, in_double_range
from fleet.feed.odata.parser import KEYWORDS

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
first_segments = identifiers.filter(lambda name: name not in KEYWORDS)

offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: UTC if minutes == 0 else timezone(timedelta(minutes=minutes))
)
aware_datetimes = st.builds(
    lambda moment, tz: moment.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    offsets,
)

literals: st.SearchStrategy[n.Expr] = st.one_of(
    st.builds(n.StringLit, st.text(max_size=12)),
    st.builds(n.IntLit, st.integers(min_value=INT64_MIN, max_value=INT64_MAX)),
    # Decimal literals a double holds: the lexer refuses the others.
    st.builds(
        n.DecimalLit, st.decimals(allow_nan=False, allow_infinity=False).filter(in_double_range)
    ),
    st.builds(n.BoolLit, st.booleans()),
    st.just(n.NullLit()),
    st.builds(n.DateTimeLit, aware_datetimes),
    st.builds(n.DateLit, st.dates()),
    st.builds(n.TimeLit, st.times()),
    st.builds(n.DurationLit, st.timedeltas()),
    st.builds(n.GeoLit, st.sampled_from(["geography", "geometry"]), st.text(max_size=20)),
)

paths = st.builds(
    lambda first, rest: n.Path((first, *rest)),
    first_segments,
    st.lists(identifiers, max_size=3),
)


def _extend(children: st.SearchStrategy[n.Expr]) -> st.SearchStrategy[n.Expr]:
    def call(name: str) -> st.SearchStrategy[n.Expr]:
        spec = FUNCTIONS[name]
        return st.lists(children, min_size=spec.min_args, max_size=spec.max_args).map(
            lambda args: n.Call(name, tuple(args))
        )

    return st.one_of(
        st.builds(n.Comparison, st.sampled_from(n.COMPARISON_OPS), children, children),
        st.builds(n.Logical, st.sampled_from(n.LOGICAL_OPS), children, children),
        st.builds(n.Not, children),
        st.builds(n.Arithmetic, st.sampled_from(n.ARITHMETIC_OPS), children, children),
        st.sampled_from(sorted(FUNCTIONS)).flatmap(call),
    )


expressions: st.SearchStrategy[n.Expr] = st.recursive(
    st.one_of(literals, paths), _extend, max_leaves=12
)
