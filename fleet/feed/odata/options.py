"""Parse the SensorThings query options of a request into :class:`QueryOptions`.

Supported: ``$filter``, ``$expand`` (with nested options in parentheses,
separated by ``;``), ``$select``, ``$orderby``, ``$top``, ``$skip``,
``$count``, ``$resultFormat=dataArray`` and ``$skiptoken`` (issued in
``@iot.nextLink``, opaque to clients). Parameters that do not start
with ``$`` are left to the caller; an unknown ``$`` option is an error.
A ``$top`` above the server maximum is lowered to it (the response then
carries ``@iot.nextLink``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from . import nodes as n
from .errors import ODataError
from .lexer import INT64_MAX
from .parser import parse_filter, parse_orderby
from .typecheck import check_filter, infer

DEFAULT_MAX_TOP = 1000
RESULT_FORMATS = ("dataArray",)
NESTED_OPTIONS = ("$filter", "$expand", "$select", "$orderby", "$top", "$skip", "$count")
TOP_LEVEL_OPTIONS = (*NESTED_OPTIONS, "$resultFormat", "$skiptoken")

_NAME = re.compile(r"[A-Za-z_@][A-Za-z0-9_.]*")
_WHITESPACE = " \t"


@dataclass(frozen=True)
class QueryOptions:
    filter: n.Expr | None = None
    expand: tuple[ExpandItem, ...] = ()
    select: tuple[tuple[str, ...], ...] | None = None  # None: every property
    orderby: tuple[n.OrderBy, ...] = ()
    top: int | None = None
    skip: int = 0
    count: bool = False
    result_format: str | None = None
    skip_token: str | None = None  # where the previous page ended, from @iot.nextLink


@dataclass(frozen=True)
class ExpandItem:
    """One ``$expand`` entry: a navigation path and the options applied to its target."""

    path: tuple[str, ...]
    options: QueryOptions = field(default_factory=QueryOptions)


# -- small readers -------------------------------------------------------------
def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WHITESPACE:
        i += 1
    return i


def _read_path(text: str, i: int, what: str) -> tuple[tuple[str, ...], int]:
    segments: list[str] = []
    while True:
        match = _NAME.match(text, i)
        if match is None:
            found = repr(text[i]) if i < len(text) else "end of input"
            raise ODataError(f"expected {what} but found {found}", i)
        segments.append(match.group(0))
        i = match.end()
        if i < len(text) and text[i] == "/":
            i += 1
            what = "a property name after '/'"
            continue
        return tuple(segments), i


def _matching_paren(text: str, start: int) -> int:
    """Index of the ')' closing the '(' at ``start``, skipping quoted strings."""
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch == "'":
            close = text.find("'", i + 1)
            while close != -1 and text.startswith("''", close):
                close = text.find("'", close + 2)
            if close == -1:
                raise ODataError("unterminated string literal; expected a closing quote", i)
            i = close
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ODataError("expected ')' to close the nested options", start)


def _split_top_level(text: str, sep: str) -> list[tuple[str, int]]:
    """Split on ``sep`` outside parentheses and quotes; return (part, offset) pairs."""
    parts: list[tuple[str, int]] = []
    start = i = 0
    while i < len(text):
        ch = text[i]
        if ch == "(" or ch == "'":
            i = _matching_paren(text, i) if ch == "(" else _end_of_string(text, i)
        elif ch == sep:
            parts.append((text[start:i], start))
            start = i + 1
        i += 1
    parts.append((text[start:], start))
    return parts


def _end_of_string(text: str, start: int) -> int:
    close = text.find("'", start + 1)
    while close != -1 and text.startswith("''", close):
        close = text.find("'", close + 2)
    if close == -1:
        raise ODataError("unterminated string literal; expected a closing quote", start)
    return close


# -- individual options ----------------------------------------------------------
def _non_negative(value: str) -> int:
    text = value.strip()
    if not text.isdigit() or not text.isascii():
        raise ODataError(f"expected a non-negative integer but found {value!r}", 0)
    number = int(text)
    if number > INT64_MAX:
        raise ODataError(f"{text} is out of range; expected at most {INT64_MAX}", 0)
    return number


def _boolean(value: str) -> bool:
    if value not in ("true", "false"):
        raise ODataError(f"expected 'true' or 'false' but found {value!r}", 0)
    return value == "true"


def parse_select(value: str) -> tuple[tuple[str, ...], ...]:
    items: list[tuple[str, ...]] = []
    for part, offset in _split_top_level(value, ","):
        stop = offset + len(part)
        path, end = _read_path(value[:stop], _skip_ws(value[:stop], offset), "a property name")
        end = _skip_ws(value, end)
        if end != stop:
            raise ODataError(f"expected ',' or end of input but found {value[end]!r}", end)
        items.append(path)
    return tuple(items)


def parse_expand(value: str, *, max_top: int = DEFAULT_MAX_TOP) -> tuple[ExpandItem, ...]:
    items: list[ExpandItem] = []
    i = 0
    while True:
        i = _skip_ws(value, i)
        path, i = _read_path(value, i, "an entity or navigation property name")
        i = _skip_ws(value, i)
        options = QueryOptions()
        if i < len(value) and value[i] == "(":
            close = _matching_paren(value, i)
            options = _parse_nested(value[i + 1 : close], i + 1, max_top)
            i = _skip_ws(value, close + 1)
        items.append(ExpandItem(path, options))
        if i == len(value):
            return tuple(items)
        if value[i] != ",":
            raise ODataError(f"expected ',', '(' or end of input but found {value[i]!r}", i)
        i += 1


def _parse_nested(text: str, base: int, max_top: int) -> QueryOptions:
    pairs: list[tuple[str, str, int]] = []
    for part, offset in _split_top_level(text, ";"):
        start = _skip_ws(part, 0)
        name, eq, value = part[start:].partition("=")
        if not eq:
            raise ODataError(
                f"expected '$option=value' in nested options but found {part.strip()!r}",
                base + offset + start,
            )
        pairs.append((name.strip(), value, base + offset + start + len(name) + 1))
    return _build(pairs, NESTED_OPTIONS, max_top, nested=True)


def _one(name: str, value: str, max_top: int) -> dict[str, object]:
    if name == "$filter":
        expr = parse_filter(value)
        check_filter(expr)
        return {"filter": expr}
    if name == "$expand":
        return {"expand": parse_expand(value, max_top=max_top)}
    if name == "$select":
        return {"select": parse_select(value)}
    if name == "$orderby":
        keys = parse_orderby(value)
        for key in keys:
            infer(key.expr)
        return {"orderby": keys}
    if name == "$top":
        return {"top": min(_non_negative(value), max_top)}
    if name == "$skip":
        return {"skip": _non_negative(value)}
    if name == "$count":
        return {"count": _boolean(value)}
    if name == "$skiptoken":
        return {"skip_token": value}
    if value not in RESULT_FORMATS:
        raise ODataError(f"expected 'dataArray' but found {value!r}", 0)
    return {"result_format": value}


def _build(
    pairs: Iterable[tuple[str, str, int]],
    allowed: tuple[str, ...],
    max_top: int,
    *,
    nested: bool,
) -> QueryOptions:
    fields: dict[str, object] = {}
    seen: set[str] = set()
    for name, value, base in pairs:
        where = "nested options" if nested else "the query"
        if name not in allowed:
            raise ODataError(
                f"unknown query option {name!r} in {where}; expected one of {', '.join(allowed)}",
                base - len(name) - 1 if nested else None,
            )
        if name in seen:
            raise ODataError(f"query option {name!r} is given twice in {where}", None)
        seen.add(name)
        try:
            fields.update(_one(name, value, max_top))
        except ODataError as exc:
            if not nested:
                raise exc.for_option(name) from None
            position = None if exc.position is None else base + exc.position
            raise ODataError(f"in nested {name}: {exc.message}", position) from None
    return QueryOptions(**fields)  # type: ignore[arg-type]


def parse_query_options(
    params: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    max_top: int = DEFAULT_MAX_TOP,
) -> QueryOptions:
    """Build :class:`QueryOptions` from decoded query parameters.

    ``params`` may be a mapping or ``(name, value)`` pairs, e.g. Starlette's
    ``request.query_params.multi_items()``; pairs let a repeated option be
    reported as an error.
    """
    items = params.items() if isinstance(params, Mapping) else params
    pairs = [(name, value, 0) for name, value in items if name.startswith("$")]
    return _build(pairs, TOP_LEVEL_OPTIONS, max_top, nested=False)


def parse_query_string(query: str, *, max_top: int = DEFAULT_MAX_TOP) -> QueryOptions:
    """Parse a raw, percent-encoded query string such as ``$top=5&$filter=result%20gt%201``."""
    return parse_query_options(
        parse_qsl(query.lstrip("?"), keep_blank_values=True), max_top=max_top
    )
