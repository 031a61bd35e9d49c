"""Crash-safe JSON-lines logs: the on-disk form of answers and judgments.

A batch job (answer generation, judging) appends one record per finished unit of work
(an answer, one judgment game) and flushes it to disk at once (``fsync``), so a crash or a
Ctrl-C loses nothing that was finished. A re-run reads the log, skips every key already there
and only fills the gaps. A record torn by a crash in the middle of a write (the last line has
no newline or is not valid JSON) is dropped when the log is opened again, and the file is
truncated back to its last complete line.

Lines are split on ``\\n`` only (``str.splitlines`` would also split inside a string on
U+2028, which real model answers contain).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Hashable, Iterable, Iterator
from pathlib import Path
from typing import Any

from openarena.errors import DataError

__all__ = ["JsonlLog", "jsonl_files", "read_jsonl"]


def jsonl_files(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The files named by ``paths``: a folder stands for its ``*.jsonl`` files at any depth
    (sorted), anything else for itself (not checked: reading a missing file raises).

    Parameters: paths, one path or several (files or folders).
    Returns: list of Path, in the order given.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(p.rglob("*.jsonl")) if p.is_dir() else [p]
    return files


def read_jsonl(path: str | os.PathLike[str], *, tolerate_torn_tail: bool = False) -> list[dict[str, Any]]:
    """All records of a JSON-lines file, in file order.

    Parameters: path; tolerate_torn_tail, drop an invalid *last* line (a write cut by a crash)
    instead of raising.
    Returns: list of dicts (blank lines are skipped).
    Raises: DataError naming the file and the 0-based line of the first invalid record, or a
    record that is not a JSON object; DataError if the file cannot be read.
    """
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError("file not found", source, expected="a JSON-lines file") from None
    except OSError as e:
        raise DataError(f"cannot read the file: {e.strerror}", source) from None
    lines = data.split(b"\n")
    out: list[dict[str, Any]] = []
    last = len(lines) - 1
    while last >= 0 and not lines[last].strip():
        last -= 1
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            if tolerate_torn_tail and i == last:
                break
            msg = e.msg if isinstance(e, json.JSONDecodeError) else "not UTF-8"
            raise DataError(f"invalid JSON: {msg}", source, i, expected="one JSON object per line") from None
        if not isinstance(rec, dict):
            raise DataError(f"record is a {type(rec).__name__}", source, i, expected="a JSON object per line")
        out.append(rec)
    return out


class JsonlLog:
    """An append-only JSON-lines file of records, keyed for resumption.

    Parameters: path (created with its folder on the first append); key, a function
    record -> hashable key (e.g. ``lambda r: (r["uid"], r["game"])``); fsync, force each
    appended line to the disk (default true: a finished record survives a power cut).

    Attributes: path; records, the records read at opening plus those appended since;
    torn, number of torn trailing records dropped at opening (0 or 1).
    """

    def __init__(self, path: str | os.PathLike[str], key: Callable[[dict[str, Any]], Hashable], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.key = key
        self.fsync = fsync
        self.torn = 0
        self.records: list[dict[str, Any]] = []
        self._keys: set[Hashable] = set()
        if self.path.exists():
            self._repair()
            for rec in read_jsonl(self.path):
                self._remember(rec)

    def _repair(self) -> None:
        """Truncate a torn last line (no trailing newline or invalid JSON)."""
        data = self.path.read_bytes()
        if not data:
            return
        body, sep, tail = data.rpartition(b"\n")
        keep = len(data)
        if tail.strip():  # the last line was not finished with a newline
            try:
                json.loads(tail.decode("utf-8"))
                # a complete JSON object without its newline: keep it, add the newline
                with open(self.path, "ab") as f:
                    f.write(b"\n")
                return
            except (UnicodeDecodeError, json.JSONDecodeError):
                keep = len(body) + 1 if sep else 0
                self.torn = 1
        if keep != len(data):
            with open(self.path, "r+b") as f:
                f.truncate(keep)

    def _remember(self, rec: dict[str, Any]) -> None:
        self.records.append(rec)
        try:
            self._keys.add(self.key(rec))
        except (KeyError, TypeError):
            pass  # a foreign record without our key fields: kept, never matches

    def __contains__(self, key: Hashable) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def append(self, record: dict[str, Any]) -> None:
        """Write ``record`` as one line and flush it to disk before returning."""
        line = json.dumps(record, ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
        self._remember(record)

    def extend(self, records: Iterable[dict[str, Any]]) -> None:
        """Append several records (each flushed)."""
        for r in records:
            self.append(r)
