"""Reproducible leaderboards: a snapshot folder holds the leaderboard and everything needed to
rebuild it (where the votes came from and their sha256, the filters, the options, the package
version, the seed), never the vote files themselves (they may not be ours to redistribute).
Verifying re-reads the source, checks its hash, rebuilds and compares every rating.

Files: ``manifest.json`` (format 1), ``leaderboard.csv``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from openarena import __version__
from openarena.errors import DataError

MANIFEST = "manifest.json"
TABLE = "leaderboard.csv"
TOLERANCE = 1e-9


def sha256_path(path: str | Path) -> str:
    """sha256 of a file, or of a folder (every file under it, sorted by relative path; the
    path and the bytes of each enter the hash)."""
    p = Path(path)
    h = hashlib.sha256()
    files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file())
    for f in files:
        if p.is_dir():
            h.update(os.fsencode(f.relative_to(p).as_posix()) + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def write_snapshot(out_dir: str | Path, lb, *, source: str, source_path: str | None, source_sha256: str | None, read_options: dict, fit_options: dict) -> Path:
    """Write ``manifest.json`` and ``leaderboard.csv`` into ``out_dir``.

    Parameters: lb, the Leaderboard; source, SOURCE as the user gave it; source_path, the file
    or folder actually read (None for a database); source_sha256, its hash (None: only the
    fingerprint of the fitted counts is kept); read_options, the filters (keyword arguments of
    the reader); fit_options, the keyword arguments of build_leaderboard.
    Returns: the manifest path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lb.table.to_csv(out / TABLE, index=False, float_format="%.17g")
    manifest = {
        "format": 1,
        "source": source,
        "source_path": source_path,
        "source_sha256": source_sha256,
        "data_sha256": lb.provenance.get("data_sha256"),
        "read_options": read_options,
        "fit_options": fit_options,
        "filters": lb.provenance.get("filters"),
        "openarena_version": __version__,
        "seed": fit_options.get("seed"),
        "n_battles": lb.provenance.get("n_battles"),
        "n_models": lb.provenance.get("n_models"),
        "created": lb.provenance.get("created"),
    }
    path = out / MANIFEST
    path.write_text(json.dumps(manifest, indent=1, default=str))
    return path


def read_manifest(snapshot_dir: str | Path) -> tuple[dict, pd.DataFrame]:
    """(manifest, saved leaderboard table). Raises DataError naming a missing or broken file."""
    d = Path(snapshot_dir)
    try:
        manifest = json.loads((d / MANIFEST).read_text())
        table = pd.read_csv(d / TABLE)
    except FileNotFoundError as err:
        raise DataError("not a snapshot folder (missing file)", str(err.filename), expected=f"{MANIFEST} and {TABLE} written by `openarena snapshot`") from None
    except json.JSONDecodeError as err:
        raise DataError(f"manifest is not valid JSON ({err.msg})", str(d / MANIFEST)) from None
    validate_manifest(manifest, str(d / MANIFEST))
    return manifest, table


_FIT = {"ci": ("sandwich", "bootstrap", "none"), "ties": ("half", "rao-kupper", "davidson")}
_READ_BOOL = ("anony", "dedup")
_READ_TEXT = ("since", "until")


def validate_manifest(manifest, source: str) -> None:
    """Check a snapshot manifest before anything is read or fitted from it (it is a file a
    stranger may hand over): format 1; a string source; only the known read and fit options,
    each of its type and range (rounds 1 to 10,000, as on the command line).
    Raises: DataError naming the field and what was expected."""
    def bad(field, what, expected):
        raise DataError(what, source, field=field, expected=expected)

    if not isinstance(manifest, dict):
        bad("manifest", "not a JSON object", "a manifest written by `openarena snapshot`")
    if manifest.get("format") != 1:
        bad("format", f"unknown format {manifest.get('format')!r}", "1")
    if not isinstance(manifest.get("source"), str) or not manifest["source"]:
        bad("source", "missing or not text", "the snapshot's source")
    fit, read = manifest.get("fit_options"), manifest.get("read_options")
    if not isinstance(fit, dict):
        bad("fit_options", "missing or not an object", "an object")
    if not isinstance(read, dict):
        bad("read_options", "missing or not an object", "an object")
    unknown = set(fit) - {"ci", "rounds", "seed", "anchor", "ties"}
    if unknown:
        bad("fit_options", f"unknown option(s) {sorted(unknown)}", "ci, rounds, seed, anchor, ties")
    for key, allowed in _FIT.items():
        if key in fit and fit[key] not in allowed:
            bad(f"fit_options.{key}", f"{fit[key]!r}", " or ".join(allowed))
    rounds = fit.get("rounds", 100)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= 10_000:
        bad("fit_options.rounds", f"{rounds!r}", "an integer from 1 to 10,000")
    seed = fit.get("seed", 0)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        bad("fit_options.seed", f"{seed!r}", "an integer >= 0")
    if fit.get("anchor") is not None and not isinstance(fit["anchor"], str):
        bad("fit_options.anchor", f"{fit['anchor']!r}", "MODEL=VALUE or null")
    unknown = set(read) - {"anony", "dedup", "since", "until", "exclude", "min_battles", "aliases"}
    if unknown:
        bad("read_options", f"unknown option(s) {sorted(unknown)}", "anony, dedup, since, until, exclude, min_battles, aliases")
    for key in _READ_BOOL:
        if key in read and not isinstance(read[key], bool):
            bad(f"read_options.{key}", f"{read[key]!r}", "true or false")
    for key in _READ_TEXT:
        if read.get(key) is not None and not isinstance(read[key], str):
            bad(f"read_options.{key}", f"{read[key]!r}", "a date text or null")
    mb = read.get("min_battles", 0)
    if isinstance(mb, bool) or not isinstance(mb, int) or mb < 0:
        bad("read_options.min_battles", f"{mb!r}", "an integer >= 0")
    if not isinstance(read.get("exclude", []), list) or not all(isinstance(x, str) for x in read.get("exclude", [])):
        bad("read_options.exclude", "not a list of model names", "a list of text")
    aliases = read.get("aliases") or {}
    if not isinstance(aliases, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()):
        bad("read_options.aliases", "not a mapping of names", "an object {OLD: NEW}")


def compare_tables(saved: pd.DataFrame, rebuilt: pd.DataFrame, tol: float = TOLERANCE) -> list[str]:
    """Differences between a saved and a rebuilt leaderboard: models added or missing, and
    every model whose rating or interval bound differs by more than ``tol`` points.
    Returns: one line per difference (empty = identical within tol)."""
    out = []
    a = saved.set_index("model")
    b = rebuilt.set_index("model")
    for m in sorted(set(a.index) - set(b.index)):
        out.append(f"{m}: in the snapshot, missing from the rebuild")
    for m in sorted(set(b.index) - set(a.index)):
        out.append(f"{m}: in the rebuild, not in the snapshot")
    common = [m for m in a.index if m in b.index]
    for col in ("rating", "rating_q025", "rating_q975"):
        if col not in a or col not in b:
            continue
        x, y = a.loc[common, col].to_numpy(float), b.loc[common, col].to_numpy(float)
        diff = np.abs(x - y)
        bad = ~((diff <= tol) | (np.isnan(x) & np.isnan(y)))
        for i in np.flatnonzero(bad):
            out.append(f"{common[i]}: {col} {x[i]:.12g} in the snapshot, {y[i]:.12g} rebuilt (difference {diff[i]:.3g} points)")
    if "num_battles" in a and "num_battles" in b:
        for m in common:
            if a.loc[m, "num_battles"] != b.loc[m, "num_battles"]:
                out.append(f"{m}: num_battles {a.loc[m, 'num_battles']} in the snapshot, {b.loc[m, 'num_battles']} rebuilt")
    return out
