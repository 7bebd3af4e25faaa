"""@iot.nextLink URLs: the same request one page further on."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fleet.feed.odata import ExpandItem, QueryOptions, unparse, unparse_orderby

# Characters clients and proxies pass through unchanged; everything else is percent-encoded.
_SAFE = "$()',/:@"


def next_link(
    url: str, query: list[tuple[str, str]], skip: int, top: int, *, token: str | None = None
) -> str:
    """The same request for the next page: after ``token`` (keyset) or at offset ``skip``."""
    kept = [(k, v) for k, v in query if k not in ("$skip", "$top", "$skiptoken")]
    params = [*kept, ("$top", str(top))]
    params.append(("$skiptoken", token) if token is not None else ("$skip", str(skip)))
    return f"{url}?{urlencode(params, quote_via=quote, safe=_SAFE)}"


def options_text(options: QueryOptions) -> list[tuple[str, str]]:
    """Query options back as (name, value) pairs."""
    pairs: list[tuple[str, str]] = []
    if options.filter is not None:
        pairs.append(("$filter", unparse(options.filter)))
    if options.expand:
        pairs.append(("$expand", ",".join(_expand_text(item) for item in options.expand)))
    if options.select is not None:
        pairs.append(("$select", ",".join("/".join(p) for p in options.select)))
    if options.orderby:
        pairs.append(("$orderby", unparse_orderby(options.orderby)))
    if options.top is not None:
        pairs.append(("$top", str(options.top)))
    if options.skip:
        pairs.append(("$skip", str(options.skip)))
    if options.count:
        pairs.append(("$count", "true"))
    return pairs


def _expand_text(item: ExpandItem) -> str:
    inner = options_text(item.options)
    text = "/".join(item.path)
    if inner:
        text += "(" + ";".join(f"{k}={v}" for k, v in inner) + ")"
    return text


def nested_next_link(url: str, options: QueryOptions, top: int) -> str:
    """Where an expanded collection continues, as a top-level request on its own path."""
    query = options_text(options)
    return next_link(url, query, options.skip + top, top)
