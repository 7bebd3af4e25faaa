"""The single error type raised for invalid SensorThings query options."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class ODataError(ValueError):
    """An invalid query option.

    ``position`` is a zero-based character offset into the option value that
    was being read (``None`` when the error is not tied to one place), and
    ``option`` names the query option, such as ``$filter``, when known.
    """

    def __init__(self, message: str, position: int | None = None, option: str | None = None):
        self.message = message
        self.position = position
        self.option = option
        super().__init__(self._render())

    def _render(self) -> str:
        text = self.message
        if self.position is not None:
            text = f"{text} (at position {self.position})"
        if self.option:
            text = f"{self.option}: {text}"
        return text

    def for_option(self, option: str) -> ODataError:
        """Return a copy tagged with the query option name, keeping the position."""
        if self.option:
            return self
        return ODataError(self.message, self.position, option)


@contextmanager
def tagged(option: str) -> Iterator[None]:
    """Name ``option`` in errors raised inside that do not name one: checks made after
    parsing (types, property names) know the expression, not where it came from."""
    try:
        yield
    except ODataError as exc:
        raise exc.for_option(option) from None


def inside_expand(exc: ODataError, nav: str) -> ODataError:
    """``exc``, raised by an option nested in ``$expand=nav(...)``, named by that path: its
    position counts from the start of the nested option's own value."""
    inner = f"({exc.option})" if exc.option else ""
    return ODataError(exc.message, exc.position, f"$expand={nav}{inner}")
