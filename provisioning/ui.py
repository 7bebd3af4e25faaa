"""Console output: one place for progress bars, step lines and dry-run notes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)


class Ui:
    """Messages carry user text (rooms, server answers) and are printed as plain text: rich
    markup would swallow anything in square brackets."""

    def __init__(self, console: Console | None = None, *, verbose: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.verbose = verbose

    @contextmanager
    def progress(
        self, description: str, total: int | None = None
    ) -> Iterator[Callable[[int, int], None]]:
        """A progress bar; the yielded callable takes (done, total)."""
        columns = (
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.console, transient=False) as bar:
            task = bar.add_task(escape(description), total=total)

            def update(done: int, of: int) -> None:
                bar.update(task, completed=done, total=of)

            try:
                yield update
            except BaseException:
                # Erase the bar rather than leave it frozen above the error message.
                bar.live.transient = True
                raise
            current = bar.tasks[0]
            bar.update(task, completed=current.total or 1, total=current.total or 1)

    def step(self, message: str) -> None:
        self.console.print(f"[cyan]•[/] {escape(message)}")

    def ok(self, message: str) -> None:
        self.console.print(f"[green]✓[/] {escape(message)}")

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]![/] {escape(message)}")

    def dry(self, message: str) -> None:
        self.console.print(f"[yellow]dry run:[/] {escape(message)}")

    def failed(self, what: str, message: str, remedy: str) -> None:
        self.console.print(f"[red bold]{escape(what)}[/] {escape(message)}")
        self.console.print(f"  [bold]fix:[/] {escape(remedy)}")

    def detail(self, message: str) -> None:
        if self.verbose:
            self.console.print(f"  [dim]{escape(message)}[/]")
