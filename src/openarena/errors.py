"""Errors that users see.

Every error caused by input (a file, a row, a field, a command-line option) is a
:class:`OpenArenaError`; the command line prints it on one line and exits with status 2.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class OpenArenaError(Exception):
    """Base class of the errors caused by the user's input or environment (CLI exit code 2)."""


@dataclass
class DataError(OpenArenaError):
    """Bad input data, located as precisely as we can.

    Attributes: message, what is wrong; source, the file, URL or dataset name ('' if in memory);
    row, 0-based record number in the source (line number - 1 for JSONL, list index for JSON,
    data row for CSV/Parquet), or None when the problem is not in one row; field, the column or
    key; expected, what would have been accepted.

    ``str(err)`` is one line for people, who count from 1:
    ``<source>: row <row + 1>, field '<f>': <message> (expected <expected>)``, where row 1 is
    the first record (the first line of a JSONL file, the first data row under a CSV header).
    """

    message: str
    source: str = ""
    row: int | None = None
    field: str | None = None
    expected: str | None = None

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.source:
            where.append(str(self.source))
        loc = []
        if self.row is not None:
            loc.append(f"row {self.row + 1}")
        if self.field is not None:
            loc.append(f"field '{self.field}'")
        head = ": ".join(x for x in [" ".join(where), ", ".join(loc)] if x)
        text = f"{head}: {self.message}" if head else self.message
        if self.expected:
            text += f" (expected {self.expected})"
        return text.replace("\n", " ")

    def at(self, source: str) -> "DataError":
        """Return a copy of this error with ``source`` filled in (when it was unknown)."""
        if self.source:
            return self
        return DataError(self.message, source, self.row, self.field, self.expected)


@dataclass
class NotEnoughVotes(DataError):
    """No two models can be rated against each other yet (each needs battles it both wins and
    loses): what the web leaderboard shows as "not enough votes". ``unrated``: {model: why}, every
    model of the battles."""

    unrated: dict[str, str] = field(default_factory=dict)


class ConvergenceError(OpenArenaError):
    """A fit did not converge or its maximum-likelihood estimate does not exist."""


class SourceUnavailable(OpenArenaError):
    """A dataset source (hub, URL, wheel) could not be reached or failed its checksum."""
