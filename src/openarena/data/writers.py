"""Write a BattleTable back to disk in a format :func:`openarena.data.readers.read_battles`
reads: Parquet, JSONL (one FastChat-style record per line), a JSON list, or CSV (without the
nested columns). Used by the curation and tagging commands to hand their output to the next
step.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from openarena.data.battles import BattleTable
from openarena.errors import DataError

WRITE_FORMATS = ("parquet", "jsonl", "json", "csv")


def _plain(value: Any) -> Any:
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def write_battles(battles: BattleTable, path: str | Path, fmt: str | None = None) -> Path:
    """Write ``battles`` to ``path``; the format comes from ``fmt`` or the suffix
    (.parquet, .jsonl, .json, .csv). Returns the path.
    Raises: DataError for an unknown format or a frame pyarrow cannot store (use jsonl then).
    """
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt not in WRITE_FORMATS:
        raise DataError(f"cannot write format {fmt!r}", str(path), expected="a .parquet, .jsonl, .json or .csv file")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = battles.frame.reset_index(drop=True)
    if fmt == "parquet":
        try:
            frame.to_parquet(path, index=False)
        except Exception as err:  # pyarrow type inference on mixed nested objects
            raise DataError(f"cannot store these columns as Parquet ({err.__class__.__name__}: {err})", str(path), expected="a .jsonl output instead") from None
    elif fmt == "csv":
        flat = frame[[c for c in frame.columns if frame[c].map(lambda v: isinstance(v, (list, dict, np.ndarray))).sum() == 0]]
        flat.to_csv(path, index=False)
    else:
        records = [{k: _plain(v) for k, v in r.items()} for r in frame.to_dict(orient="records")]
        with open(path, "w", encoding="utf-8") as fh:
            if fmt == "json":
                json.dump(records, fh, ensure_ascii=False)
            else:
                for r in records:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path
