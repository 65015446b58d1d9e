"""What every command module shares: the stderr console, progress bars and JSON printing."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn, track

T = TypeVar("T")
console = Console(stderr=True)


def progress_over(items: Iterable[T], description: str, total: int, quiet: bool = False) -> Iterable[T]:
    """Iterate with a progress bar on stderr (none with quiet)."""
    return items if quiet else track(items, description=description, total=total, console=console, transient=True)


def progress_bar(quiet: bool = False) -> Progress:
    """A progress bar with ETA on stderr, for jobs that report counts."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
        transient=True,
    )


def print_json(value: Any) -> None:
    """The one JSON object a `--json` command prints on stdout."""
    print(json.dumps(value, indent=2))
