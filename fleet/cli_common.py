"""What every `fleet` sub-command shares: the console, the verbose flag, settings and logging
that stop with a clear message instead of a traceback."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from fleet.core.settings import Settings, get_settings

console = Console(stderr=True)

Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging and tracebacks.")]


def setup_logging_or_exit(verbose: bool) -> None:
    from fleet.observability.logging import log_format_from_env, setup_logging

    try:
        fmt = log_format_from_env()
    except ValueError as exc:
        console.print(f"[red]configuration error[/red]: {exc}")
        raise typer.Exit(2) from None
    setup_logging(verbose=verbose, fmt=fmt)


def settings_or_exit(**overrides: object) -> Settings:
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return get_settings(**clean)
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            console.print(f"[red]configuration error[/red] in {where}: {err['msg']}")
        raise typer.Exit(2) from None
