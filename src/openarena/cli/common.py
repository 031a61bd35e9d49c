"""What every command shares: one-line errors with exit code 2, progress bars, stderr console."""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from openarena.errors import OpenArenaError

err_console = Console(stderr=True, soft_wrap=True)
out_console = Console()

EXIT_INPUT_ERROR = 2


def fail(message: str) -> "typer.Exit":
    """Print ``error: message`` on one line to stderr and return the exit (status 2) to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_INPUT_ERROR)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn OpenArenaError (bad input, unreachable source, no MLE) and OSError on a named path
    (cannot read or write a file) into one line + exit 2."""
    try:
        yield
    except OpenArenaError as err:
        raise fail(str(err).replace("\n", " ")) from None
    except OSError as err:
        # a path that cannot be read or written (permissions, missing folder, a file where a
        # folder is expected): the user's environment, not a bug
        if err.filename is None:
            raise
        what = err.strerror or err.__class__.__name__
        raise fail(f"{err.filename}: {what}") from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None


@contextlib.contextmanager
def progress_bar(description: str, total: float, enabled: bool = True) -> Iterator[Callable[[float], None]]:
    """A rich progress bar on stderr; yields ``advance(n)``. Disabled when stderr is not a
    terminal unless forced, so logs stay clean."""
    if not enabled or total <= 0:
        yield lambda n: None
        return
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=not sys.stderr.isatty(),
    )
    with progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


@contextlib.contextmanager
def download_progress(description: str = "download", enabled: bool = True) -> Iterator[Callable[[int, int | None], None]]:
    """A byte-progress bar on stderr for downloads; yields ``update(done_bytes, total_or_None)``.
    Nothing is shown until the first update (cached sources print nothing)."""
    if not enabled:
        yield lambda done, total: None
        return
    from rich.progress import DownloadColumn, TransferSpeedColumn

    progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err_console, transient=True)
    state: dict = {}

    def update(done: int, total: int | None) -> None:
        if "task" not in state:
            progress.start()
            state["task"] = progress.add_task(description, total=total)
        progress.update(state["task"], completed=done, total=total)

    try:
        yield update
    finally:
        if "task" in state:
            progress.stop()
