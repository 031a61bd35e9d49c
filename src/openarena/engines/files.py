"""The Parquet files an engine reads, and what identifies a version of each.

A source is a Parquet file, a folder (every ``*.parquet`` below it, hidden files left out) or a
glob (``votes/*/part-*.parquet``). Each file is identified by its resolved path, size and
modification time in nanoseconds (:class:`FileKey`): the incremental aggregate
(:mod:`.incremental`) re-reads a file when any of the three changes.
"""

from __future__ import annotations

import glob as _glob
import os
from dataclasses import dataclass
from pathlib import Path

from openarena.errors import DataError

#: Characters that make a source a glob pattern.
GLOB_CHARS = "*?["


@dataclass(frozen=True)
class FileKey:
    """One version of one file: ``path`` (absolute, resolved), ``size`` (bytes), ``mtime_ns``."""

    path: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str | Path) -> "FileKey":
        p = Path(path).resolve()
        st = p.stat()
        return cls(str(p), int(st.st_size), int(st.st_mtime_ns))


def is_glob(source: str | Path) -> bool:
    """True when ``source`` is a glob pattern that is not itself an existing path."""
    s = str(source)
    return any(ch in s for ch in GLOB_CHARS) and not Path(s).exists()


def parquet_files(source: str | Path) -> list[FileKey]:
    """The Parquet files of ``source`` (file, folder or glob), sorted by path.

    Raises: DataError naming the source when it does not exist, matches nothing or holds no
    ``*.parquet`` file.
    """
    s = str(source)
    if is_glob(s):
        paths = [Path(p) for p in _glob.glob(s, recursive=True) if Path(p).is_file()]
        if not paths:
            raise DataError("the pattern matches no file", s, expected="a glob matching Parquet files, e.g. votes/*.parquet")
    else:
        p = Path(s)
        if p.is_dir():
            paths = [
                q
                for q in p.rglob("*.parquet")
                if q.is_file() and not any(part.startswith((".", "_")) for part in q.relative_to(p).parts)
            ]
            if not paths:
                raise DataError("no *.parquet files in the folder", s, expected="a folder of Parquet files")
        elif p.is_file():
            paths = [p]
        else:
            raise DataError("no such file or folder", s, expected="a Parquet file, a folder of them or a glob")
    return sorted((FileKey.of(q) for q in paths), key=lambda k: k.path)


def total_bytes(files: list[FileKey]) -> int:
    """Sum of the file sizes in bytes."""
    return sum(f.size for f in files)


def is_parquet_collection(source: str | Path) -> bool:
    """True for a glob, or a folder holding Parquet files only (no other data files), the
    sources an engine can read."""
    s = str(source)
    if is_glob(s):
        return True
    p = Path(s)
    if not p.is_dir():
        return False
    for q in p.rglob("*"):
        if q.is_file() and not any(part.startswith((".", "_")) for part in q.relative_to(p).parts):
            if q.suffix.lower() in (".json", ".jsonl", ".ndjson", ".csv"):
                return False
    return any(True for _ in p.rglob("*.parquet"))


def env_path(name: str) -> str | None:
    """The value of environment variable ``name`` or None when unset or empty."""
    v = os.environ.get(name, "").strip()
    return v or None
