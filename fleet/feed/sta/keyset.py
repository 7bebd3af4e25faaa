"""Keyset continuation of Observation pages: ``$skiptoken`` holds where the last page ended.

An offset (``$skip``) moves when readings arrive or are purged while a client pages, so pages
repeat or miss rows. The token holds the ``$orderby`` values and id of the last row sent; the
next page starts strictly after it in the same order, whatever changed before it. Ordering on
a computed expression (``result add 1``) keeps offsets: its value cannot be carried exactly.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from fleet.feed.odata import ODataError
from fleet.feed.odata import nodes as n
from fleet.feed.odata.sql_functions import datetime_literal

Column = sa.ColumnElement[Any]
TIME_PROPERTIES = ("phenomenonTime", "resultTime")
OPTION = "$skiptoken"


def usable(orderby: Sequence[n.OrderBy]) -> bool:
    """Keys are plain properties (never null for Observations), so rows compare exactly."""
    return all(isinstance(item.expr, n.Path) for item in orderby)


def encode(values: Sequence[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    text = json.dumps(plain, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _foreign() -> ODataError:
    message = "not a token this service issued; follow @iot.nextLink unchanged"
    return ODataError(message, None, OPTION)


def decode(token: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise _foreign() from None
    if not isinstance(values, list) or not values:
        raise _foreign()
    return values


def after(
    token: str,
    orderby: Sequence[n.OrderBy],
    resolve: Callable[[tuple[str, ...]], Column],
    id_column: Column,
    dialect: str,
) -> Column:
    """Rows strictly after the token's row in ``orderby`` then id order."""
    values = decode(token)
    if not usable(orderby) or len(values) != len(orderby) + 1:
        raise ODataError(
            "the token does not belong to this $orderby; follow @iot.nextLink unchanged",
            None,
            OPTION,
        )
    keys: list[tuple[Column, bool, Column]] = []
    for item, value in zip(orderby, values, strict=False):
        path = cast(n.Path, item.expr)  # usable() checked
        keys.append((resolve(path.segments), item.descending, _literal(path, value, dialect)))
    keys.append((id_column, False, _literal(n.Path(("id",)), values[-1], dialect)))
    alternatives: list[Column] = []
    for index, (column, descending, value) in enumerate(keys):
        ties = [col == val for col, _, val in keys[:index]]
        beyond = column < value if descending else column > value
        alternatives.append(sa.and_(*ties, beyond))
    return sa.or_(*alternatives)


def _literal(path: n.Path, value: Any, dialect: str) -> Column:
    if path.segments[-1] in TIME_PROPERTIES:
        try:
            instant = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            instant = None
        if instant is None or instant.tzinfo is None:
            raise _foreign()
        return datetime_literal(instant, dialect)
    last = path.segments[-1]
    if last == "name":
        fits = isinstance(value, str)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        fits = False
    elif last == "id":
        fits = isinstance(value, int) and -(2**63) <= value < 2**63
    else:  # result
        fits = math.isfinite(value)
    if not fits:
        raise _foreign()
    return sa.literal(value)
