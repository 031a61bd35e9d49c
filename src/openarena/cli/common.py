"""What every command shares: one-line errors with exit code 2, progress bars, stderr console."""

from __future__ import annotations

import contextlib
import numbers
import re
import sys
from pathlib import Path
from typing import Callable, Iterator

import typer

from openarena.errors import OpenArenaError


#: Columns of the tables printed to a pipe or a file (no terminal to measure; COLUMNS overrides).
PIPE_WIDTH = 160


class LazyConsole:
    """A rich Console made on first use, with ``options`` (rich.console, with rich.text and the
    styles, takes 0.03 s to import, and a CSV leaderboard prints nothing through it). Every
    attribute is the Console's; :attr:`console` is the Console itself (for rich's
    ``console=`` parameters)."""

    def __init__(self, **options) -> None:
        self._options = options
        self._console = None

    @property
    def console(self):
        if self._console is None:
            import os
            import sys

            from rich.console import Console

            options = dict(self._options)
            stream = sys.stderr if options.get("stderr") else sys.stdout
            if "COLUMNS" not in os.environ and not (hasattr(stream, "isatty") and stream.isatty()):
                # a pipe or a file has no width: rich's 80 columns wrapped model names in tables
                options.setdefault("width", PIPE_WIDTH)
            self._console = Console(**options)
        return self._console

    def __getattr__(self, name: str):
        return getattr(self.console, name)


err_console = LazyConsole(stderr=True, soft_wrap=True)
out_console = LazyConsole()

EXIT_INPUT_ERROR = 2

#: parameters of openarena.api that the command line spells as options (lower layers name the
#: parameter, ``min_battles=N``; the CLI shows its option, ``--min-battles N``)
PARAMETER_FLAGS = {
    "min_battles": "--min-battles", "exclude": "--exclude", "drop_unrated": "--drop-unrated", "prior": "--prior",
    "since": "--since", "until": "--until", "anchor": "--anchor", "ci": "--ci", "rating": "--rating", "ties": "--ties",
    "rounds": "--rounds", "level": "--level", "control": "--control", "min_votes_shown": "--min-votes-shown",
    "category": "--category", "seed": "--seed", "identity_leak": "--identity-leak", "anony": "--anony", "dedup": "--dedup",
    # trust and red-team commands
    "price_weights": "--price-weights", "window": "--window", "split": "--split", "adjust": "--adjust", "alpha": "--alpha",
    "variants": "--variants", "released_at": "--released-at", "released": "--released", "weighting": "--weighting",
    "player_prior": "--player-prior",
}
_PARAM = re.compile(r"\b(" + "|".join(PARAMETER_FLAGS) + r")=('[^']*'|[^\s,;)]*)")
_FIELD = re.compile(r"(row \d+, )?field '(" + "|".join(PARAMETER_FLAGS) + r")'")


def as_flags(text: str) -> str:
    """Rewrite the parameters named in an error of the library (``min_battles=N``,
    ``ci='bootstrap'``, ``drop_unrated=True``, ``field 'anchor'``) as this CLI's options
    (``--min-battles N``, ``--ci bootstrap``, ``--drop-unrated``, ``option --anchor``); a field
    of a row (``row 3, field 'rating'``) is a column of the input and stays as it is."""

    def flag(m: re.Match) -> str:
        name, value = m.group(1), m.group(2).strip("'")
        if value == "True":
            return PARAMETER_FLAGS[name]
        return f"{PARAMETER_FLAGS[name]} {value}" if value else PARAMETER_FLAGS[name]

    text = _PARAM.sub(flag, text)
    # a field of a row is a column of the input file (e.g. 'rating' of a leaderboard JSON), not an option
    return _FIELD.sub(lambda m: m.group(0) if m.group(1) else f"option {PARAMETER_FLAGS[m.group(2)]}", text)


#: columns that hold names (models, routers, voters...): left-aligned and never cut with an
#: ellipsis; at narrow terminals they fold onto a second line instead
NAME_COLUMNS = frozenset({"model", "Model", "name", "router", "policy", "voter", "reason", "category", "leader", "benchmark", "judge", "family", "column", "endpoint", "error", "provider", "organization", "check", "variant", "player", "target", "source"})


def results_table(title: str, columns, caption: str | None = None):
    """A rich table of results: name columns (:data:`NAME_COLUMNS`) left-aligned, the others
    right-aligned; a cell too wide for a narrow terminal folds onto more lines instead of being
    cut with an ellipsis, so a model name is never shortened to "gpt-4o-20…" at 80 columns."""
    from rich.table import Table

    t = Table(title=title, caption=caption)
    for col in columns:
        if col in NAME_COLUMNS:
            t.add_column(str(col), justify="left", overflow="fold")
        else:
            t.add_column(str(col), justify="right", overflow="fold")
    return t


def format_number(value) -> str:
    """A number for a table cell: whole numbers with thousands separators (10,000, never
    1e+04), large values with one decimal, tiny p-values in scientific notation, others with
    four significant digits; anything else as text."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    v = float(value)
    if v != v:
        return ""
    if v.is_integer() and abs(v) < 1e15:
        return f"{v:,.0f}"
    if abs(v) >= 1000:
        return f"{v:,.1f}"
    if 0 < abs(v) < 1e-3:
        return f"{v:.2e}"
    return f"{v:.4g}"


def column_formatter(values):
    """One format for a whole column of a table, so its numbers line up: whole numbers with
    thousands separators (a column of counts); values reaching 10 with one decimal (ratings,
    shifts: 951.0, 1,218.4, -6.4); smaller ones with three decimals (z scores, standard
    errors: 7.181, 4.210); a column with values under 0.001 (p-values) with :func:`format_number`. Returns a function value -> cell text (text, booleans and missing
    values as :func:`format_number`)."""
    def real(v) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, bool) and float(v) == float(v)

    nums = [float(v) for v in values if real(v)]
    if not nums:
        return format_number
    if all(x.is_integer() and abs(x) < 1e15 for x in nums):
        return lambda v: f"{float(v):,.0f}" if real(v) else format_number(v)
    if max(abs(x) for x in nums) >= 10:
        return lambda v: f"{float(v):,.1f}" if real(v) else format_number(v)
    if min((abs(x) for x in nums if x), default=1.0) >= 1e-3:
        return lambda v: f"{float(v):.3f}" if real(v) else format_number(v)
    return format_number


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
        raise fail(as_flags(str(err).replace("\n", " "))) from None
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


def response_cache(folder: Path, enabled: bool = True, path: Path | None = None):
    """The response cache of every LLM call of a batch command (judges, answers, taggers):
    ``path``, or :data:`~openarena.providers.cache.CACHE_FILE_NAME` in ``folder`` (the output's
    folder); None when not ``enabled`` (``--no-cache``). Its folders are made.
    Raises: typer.Exit (one line, exit 2) when the SQLite file cannot be opened."""
    if not enabled:
        return None
    import sqlite3

    from openarena.providers.cache import CACHE_FILE_NAME, ResponseCache

    p = path or folder / CACHE_FILE_NAME
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        return ResponseCache(p)
    except sqlite3.Error as e:
        raise fail(f"{p}: cannot open the response cache: {e} (or use --no-cache)") from None


@contextlib.contextmanager
def progress_bar(description: str, total: float, enabled: bool = True) -> Iterator[Callable[[float], None]]:
    """A rich progress bar on stderr; yields ``advance(n)``. Disabled when stderr is not a
    terminal unless forced, so logs stay clean."""
    if not enabled or total <= 0:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console.console,
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
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err_console.console, transient=True)
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
