"""What every `fleet` sub-command shares: the console, the verbose flag, settings and logging
that stop with a clear message instead of a traceback."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from fleet.core.settings import Settings, get_settings

console = Console(stderr=True, soft_wrap=True)  # an error stays one line, however long

Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging and tracebacks.")]

# Shown by name only: a configuration error must not print them.
_SECRET_FIELDS = frozenset({"admin_token", "secret_key", "ca_passphrase"})
_URL_PASSWORD = re.compile(r"(://[^/\s:@]*:)[^@\s]*@")


def configuration_error(message: str) -> None:
    """One line on standard error, however long (a wrapped line reads as several errors)."""
    console.print(f"[red]configuration error[/red]: {escape(message)}", soft_wrap=True)


@contextmanager
def configuration_errors_exit(argv: Sequence[str]) -> Iterator[None]:
    """Around the whole command line: a data folder or database the settings name that cannot
    be used ends any command with one line and exit code 2; -v/--verbose adds the traceback."""
    from fleet.core.context import ConfigurationError

    try:
        yield
    except ConfigurationError as exc:
        if "-v" in argv or "--verbose" in argv:
            console.print_exception()
        configuration_error(str(exc))
        raise SystemExit(2) from None


def setup_logging_or_exit(verbose: bool) -> None:
    from fleet.observability.logging import log_format_from_env, setup_logging

    try:
        fmt = log_format_from_env()
    except ValueError as exc:
        configuration_error(str(exc))
        raise typer.Exit(2) from None
    setup_logging(verbose=verbose, fmt=fmt)


def settings_or_exit(**overrides: object) -> Settings:
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return get_settings(**clean)
    except ValidationError as exc:
        for err in exc.errors():
            configuration_error(_describe(err, set(clean)))
        raise typer.Exit(2) from None


def _describe(err: Any, overridden: set[str]) -> str:
    """`FLEET_HTTP_PORT=abc: Input should be a valid integer`: the variable an operator set,
    not the field it fills; secrets by name only, passwords in URLs masked."""
    message = str(err["msg"]).removeprefix("Value error, ")
    loc = [str(part) for part in err["loc"]]
    if loc:
        field = loc[0]
        name = f"{'.'.join(loc)} (command line)" if field in overridden else _variable(loc)
        value = "" if field in _SECRET_FIELDS else f"={err['input']}"
        message = f"{name}{value}: {message}"
    return _URL_PASSWORD.sub(r"\1***@", message)


def _variable(loc: list[str]) -> str:
    return "FLEET_" + "_".join(loc).upper()
