"""A stored aggregate per file, so that adding partitions costs only the new files.

For one query (:class:`~openarena.engines.plan.RowFilters`) the store keeps the grouped
counts of every file it has read, keyed by the file's :class:`~openarena.engines.files.FileKey`
(resolved path, size, modification time in ns). On the next call, files whose key is unchanged
are taken from the store; new or changed files are aggregated by the engine and added; files
that disappeared are dropped. Counts are integers, so the result equals a full aggregation
exactly (tested).

Layout: ``<dir>/<query key>.parquet`` (the grouped counts with the key columns ``size`` and
``mtime_ns``) and ``<dir>/<query key>.files.json`` (every file read, including files without
rows); both written to a temporary name and renamed, so a crash leaves the previous store.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import pandas as pd

from openarena.engines.files import FileKey
from openarena.engines.plan import RowFilters

VERSION = 1


def default_store() -> Path | None:
    """``OPENARENA_COUNTS_CACHE`` ('off' disables), else ``$XDG_CACHE_HOME/openarena/counts``
    (``~/.cache/openarena/counts``)."""
    env = os.environ.get("OPENARENA_COUNTS_CACHE", "").strip()
    if env.lower() in ("off", "0", "none", "false"):
        return None
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "openarena" / "counts"


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def incremental_counts(
    store: str | Path,
    files: list[FileKey] | tuple[FileKey, ...],
    filters: RowFilters,
    run: Callable[[list[FileKey]], pd.DataFrame],
) -> tuple[pd.DataFrame, dict]:
    """Grouped counts of ``files``, reading only files the store does not hold.

    Parameters: store, a folder (created if needed); run, the engine: grouped counts of a list
    of files.
    Returns: (groups of all ``files``, info) with info = {'reused': n files, 'read': n files,
    'dropped': n files no longer present}.
    """
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    key = filters.key()
    data_path = store / f"{key}.parquet"
    index_path = store / f"{key}.files.json"
    held: dict[str, tuple[int, int]] = {}
    old = None
    if index_path.exists() and data_path.exists():
        try:
            doc = json.loads(index_path.read_text())
            if doc.get("version") == VERSION:
                held = {p: (int(s), int(m)) for p, s, m in doc["files"]}
                old = pd.read_parquet(data_path)
        except (OSError, ValueError, KeyError):
            held, old = {}, None  # an unreadable store is rebuilt
    wanted = {f.path: f for f in files}
    fresh = [f for f in files if held.get(f.path) != (f.size, f.mtime_ns)]
    reuse = {p for p, sm in held.items() if p in wanted and (wanted[p].size, wanted[p].mtime_ns) == sm}
    parts = []
    if old is not None and reuse:
        parts.append(old[old["file"].isin(reuse)])
    if fresh:
        new = run(fresh).copy()
        sizes = {f.path: (f.size, f.mtime_ns) for f in fresh}
        new["size"] = new["file"].map(lambda p: sizes[p][0]).astype("int64")
        new["mtime_ns"] = new["file"].map(lambda p: sizes[p][1]).astype("int64")
        parts.append(new)
    cols = ["file", "model_a", "model_b", "winner", *filters.flags(), "n", "size", "mtime_ns"]
    groups = pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
    if fresh or set(held) - set(wanted):
        for col in filters.flags():
            groups[col] = groups[col].astype("boolean")
        _atomic_write(data_path, lambda p: groups.to_parquet(p, index=False))
        doc = {"version": VERSION, "filters": filters.__dict__, "files": [[f.path, f.size, f.mtime_ns] for f in files]}
        _atomic_write(index_path, lambda p: p.write_text(json.dumps(doc)))
    info = {"reused": len(reuse), "read": len(fresh), "dropped": len(set(held) - set(wanted))}
    return groups.drop(columns=["size", "mtime_ns"]), info
