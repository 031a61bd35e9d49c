"""Battle outcomes already aggregated per model pair: leaderbot's JSON layout.

Source of the format: the PyPI package leaderbot (BSD-3-Clause), member
``leaderbot/data/chatbotarena_20240814.json`` built by its ``convert.py`` from LMSYS'
clean_battle_20240814_public.json (anony and dedup_tag.sampled battles only)::

    {"models": [name, ...],            # n_models keys
     "X": [[i, j], ...],               # n_pairs index pairs into models
     "Y": [[wins_i, wins_j, tie, tie_bothbad], ...]}   # n_pairs x 4 vote counts

Extra keys are ignored. Row numbers in errors are indices into X / Y (or into models).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

from openarena.data.battles import PairCounts, from_matrix_counts
from openarena.errors import DataError

PAIR_COUNT_KEYS = ("models", "X", "Y")


def is_pair_counts(obj: object) -> bool:
    """Whether a decoded JSON value has the leaderbot layout (an object with models, X, Y)."""
    return isinstance(obj, dict) and all(k in obj for k in PAIR_COUNT_KEYS)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_count(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def pair_counts_from_obj(obj: object, source: str) -> PairCounts:
    """Validate a decoded leaderbot object and build :class:`PairCounts`.

    Raises: DataError (source, row, field) for a missing key, a model that is not a non-empty
    string or appears twice, a pair that is not two integer indices, a count row that is not
    four numbers, mismatched lengths, an index out of range, a model paired with itself or a
    negative count (the last three via :func:`openarena.data.battles.from_matrix_counts`).
    """
    if not isinstance(obj, dict):
        raise DataError(f"the file holds a JSON {type(obj).__name__}", source, expected="an object with keys models, X, Y")
    for key in PAIR_COUNT_KEYS:
        if key not in obj:
            raise DataError(f"missing key {key!r}; found {', '.join(map(repr, obj)) or 'none'}", source, field=key, expected="keys models, X, Y")
        if not isinstance(obj[key], list):
            raise DataError(f"{key!r} is a {type(obj[key]).__name__}", source, field=key, expected="a JSON list")
    models, X, Y = obj["models"], obj["X"], obj["Y"]
    seen: dict[str, int] = {}
    for k, m in enumerate(models):
        if not isinstance(m, str) or not m.strip():
            raise DataError(f"model name {m!r} is not a non-empty string", source, row=k, field="models", expected="a model key")
        if m in seen:
            raise DataError(f"model {m!r} is listed twice (also at {seen[m]})", source, row=k, field="models", expected="unique model keys")
        seen[m] = k
    for k, p in enumerate(X):
        if not (isinstance(p, list) and len(p) == 2 and _is_int(p[0]) and _is_int(p[1])):
            raise DataError(f"pair {p!r} is not two integer indices", source, row=k, field="X", expected="[i, j] with integer model indices")
    for k, y in enumerate(Y):
        if not (isinstance(y, list) and len(y) == 4 and all(_is_count(v) for v in y)):
            raise DataError(f"counts {y!r} are not four numbers", source, row=k, field="Y", expected="[wins of i, wins of j, tie, tie (bothbad)]")
        if not all(math.isfinite(v) and v >= 0 for v in y):
            raise DataError(f"counts {y!r} are negative or not finite", source, row=k, field="Y", expected="non-negative counts")
    if len(X) != len(Y):
        raise DataError(f"{len(X)} pairs in X but {len(Y)} count rows in Y", source, field="Y", expected="one count row per pair")
    if not X:
        raise DataError("no model pairs in the file", source, field="X", expected="at least one pair")
    pc = from_matrix_counts(models, X, Y, source)
    used = np.unique(pc.pairs.ravel())
    if len(used) < pc.n_models:  # models seen only in all-zero pairs have no vote at all
        pos = np.full(pc.n_models, -1, dtype=np.int64)
        pos[used] = np.arange(len(used))
        pc = PairCounts(tuple(pc.models[k] for k in used), pos[pc.pairs], pc.counts, source)
    return pc


#: Files at least this large keep their parsed PairCounts in the cache (see :func:`_cached`).
PARSED_CACHE_MIN_BYTES = 64 * 1024


def _cache_file(path: Path) -> Path:
    from openarena.data.registry import cache_dir

    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    return cache_dir() / "parsed" / f"pair-counts-{key}.npz"


def _stamp(path: Path) -> np.ndarray:
    st = path.stat()
    return np.array([st.st_mtime_ns, st.st_size], dtype=np.int64)


def _cached(path: Path, source: str) -> PairCounts | None:
    """The PairCounts parsed from ``path`` before, when the file's modification time (ns) and
    size are still those recorded; None otherwise (or when the cache cannot be read)."""
    try:
        with np.load(_cache_file(path), allow_pickle=False) as z:
            if not np.array_equal(z["stamp"], _stamp(path)):
                return None
            return PairCounts(tuple(str(m) for m in z["models"]), z["pairs"], z["counts"], source)
    except (OSError, ValueError, KeyError):
        return None


def _store(path: Path, stamp: np.ndarray, pc: PairCounts) -> None:
    """Best effort: a read-only or full disk only costs the next run the parse."""
    target = _cache_file(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, stamp=stamp, models=np.array(pc.models, dtype=str), pairs=pc.pairs, counts=pc.counts)
        os.replace(tmp, target)
    except OSError:
        pass


def read_pair_counts_json(path: str | Path, source: str | None = None) -> PairCounts:
    """Read aggregated pair counts in leaderbot's JSON layout (a file of 64 KiB or more is parsed
    once: the result is kept under ``$OPENARENA_CACHE/parsed``, keyed by the file's path,
    modification time and size, and read back while those are unchanged).

    Returns: PairCounts (models sorted, each unordered pair once, all-zero pairs dropped and
    with them any model left without a single vote; counts in
    the column order model_a, model_b, tie, tie (bothbad) = wins of the first model, wins of
    the second, tie, tie (bothbad)).
    Raises: DataError naming the file for an empty, truncated, non-UTF-8 or malformed file, and
    the row and field for a bad entry (see :func:`pair_counts_from_obj`).
    """
    path = Path(path)
    source = source or str(path)
    try:
        stamp = _stamp(path)
    except OSError:
        stamp = None  # read_bytes below reports it
    use_cache = stamp is not None and stamp[1] >= PARSED_CACHE_MIN_BYTES
    if use_cache:
        hit = _cached(path, source)
        if hit is not None:
            return hit
    pc = _parse_file(path, source)
    if use_cache:
        _store(path, stamp, pc)
    return pc


def _parse_file(path: Path, source: str) -> PairCounts:
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError("empty file", source, expected="a JSON object with keys models, X, Y")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"not valid UTF-8 at byte {err.start} ({err.reason})", source, expected="a UTF-8 encoded file") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        what = "truncated file: " if not text[err.pos:].strip() or err.msg.startswith("Unterminated string") else ""
        raise DataError(f"{what}not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}", source, expected="a complete JSON object with keys models, X, Y") from None
    return pair_counts_from_obj(obj, source)
