"""OGC SensorThings API v1.1 query options: parse, check, evaluate and compile to SQL.

Typical use::

    options = parse_query_string("$filter=result gt 20&$top=10")
    clause = compile_filter(options.filter, resolve, dialect=engine.dialect.name)
    predicate = make_predicate(options.filter)   # for the MQTT live feed
"""

from .errors import ODataError, inside_expand, tagged
from .evaluate import evaluate, make_predicate, matches, resolve_path
from .nodes import Expr, OrderBy
from .options import (
    DEFAULT_MAX_TOP,
    ExpandItem,
    QueryOptions,
    parse_expand,
    parse_query_options,
    parse_query_string,
    parse_select,
)
from .parser import parse_filter, parse_orderby
from .sqlalchemy_compile import compile_filter, compile_orderby, compile_value
from .typecheck import check_filter
from .unparse import unparse, unparse_orderby

__all__ = [
    "DEFAULT_MAX_TOP",
    "ExpandItem",
    "Expr",
    "ODataError",
    "OrderBy",
    "QueryOptions",
    "check_filter",
    "compile_filter",
    "compile_orderby",
    "compile_value",
    "evaluate",
    "inside_expand",
    "make_predicate",
    "matches",
    "parse_expand",
    "parse_filter",
    "parse_orderby",
    "parse_query_options",
    "parse_query_string",
    "parse_select",
    "resolve_path",
    "tagged",
    "unparse",
    "unparse_orderby",
]
