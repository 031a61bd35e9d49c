"""Export the arena's votes in public formats that :func:`openarena.data.readers.read_battles`
(and FastChat's analysis scripts) read back.

Formats:

- ``clean_battle``: a JSON list of FastChat clean_battle records (fastchat/serve/monitor/
  clean_battle_data.py): question_id, model_a, model_b, winner, judge, turn, anony, language,
  tstamp, conversation_a, conversation_b, plus our sampling_prob (FastChat has none), arena
  ('text', 'vision', 'code') and image_sha256 (the SHA-256 of each image of the user's
  messages: the images themselves are never exported);
- ``jsonl``: the same records, one per line;
- ``parquet``: one row per vote, the columns of the arena-human-preference datasets
  (question_id, model_a, model_b, winner, judge, turn, anony, language, tstamp,
  conversation_a, conversation_b) plus sampling_prob and sampling_policy;
- ``csv``: the same without the conversations (model_a, model_b, winner, judge, turn, anony,
  tstamp, sampling_prob, arena, image_sha256 space-separated): small, for spreadsheets.

Whatever the database holds, export does not fail on it: every string (model names, voter
ids, conversations) is written as valid Unicode text (lone surrogates and NUL become U+FFFD,
:func:`openarena.text.clean_text`), and for Parquet each conversation is a list of
``{role, content}`` strings (the datasets' shape), whatever odd value a row holds.

Only counted votes are exported by default (``include_uncounted`` adds the others with
``counted`` and ``reason``). Voter ids are the salted hashes already stored; IP addresses are
never stored. Prompts are exported as typed: for a public release (PII scrubbed, voter ids
re-hashed with a secret salt, data card) use :func:`openarena.data.release.export_release` on
:func:`openarena.storage.reading.read_battles` (``openarena release db --out-dir DIR``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from openarena.data.conversations import as_messages
from openarena.data.release import image_sha256
from openarena.storage.db import Database
from openarena.storage.reading import read_battles
from openarena.text import clean_text, message_text

__all__ = ["EXPORT_FORMATS", "export_battles", "export_frame"]

EXPORT_FORMATS = ("clean_battle", "jsonl", "parquet", "csv")


def export_frame(db: Database, *, include_uncounted: bool = False, include_named: bool = True) -> pd.DataFrame:
    """The rows that :func:`export_battles` writes, as a DataFrame (one row per vote).

    Raises: DataError when the database holds no (counted) vote.
    """
    modes = ("anony", "named") if include_named else ("anony",)
    table = read_battles(db, modes=modes, counted_only=not include_uncounted, conversations=True)
    f = table.frame
    out = pd.DataFrame(
        {
            "question_id": f["battle_id"],
            "model_a": f["model_a"],
            "model_b": f["model_b"],
            "winner": f["winner"],
            "judge": f["judge"],
            "turn": f["turn"].astype("int64"),
            "anony": f["anony"].astype(bool),
            "language": "unknown",
            "tstamp": f["tstamp"].astype(float),
            "conversation_a": f["conversation_a"],
            "conversation_b": f["conversation_b"],
            "sampling_prob": f["sampling_prob"],
            "sampling_policy": f["sampling_policy"],
            "arena": f["arena"],
            "image_sha256": [image_sha256(c) for c in f["conversation_a"]],
        }
    )
    if include_uncounted:
        out["counted"] = f["counted"].to_numpy()
        out["reason"] = f["reason"]
    return out


def _clean(value):
    """``value`` with every string in it (dict keys included) made valid text."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_clean(v) for v in value.tolist()]
    return value


def _clean_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every string of its object columns made valid text."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = [_clean(v) for v in out[col]]
    return out


def _flat_conversation(value) -> list[dict[str, str]]:
    """A conversation as a list of {role, content} strings (one Parquet type for every row)."""
    return [{"role": clean_text(str(m.get("role", ""))), "content": clean_text(message_text(m.get("content")))} for m in as_messages(value)]


def _records(frame: pd.DataFrame) -> list[dict]:
    recs = frame.to_dict(orient="records")
    for r in recs:
        for k, v in list(r.items()):
            if isinstance(v, float) and not np.isfinite(v):
                r[k] = None
            elif isinstance(v, (np.bool_,)):
                r[k] = bool(v)
            elif isinstance(v, (np.integer,)):
                r[k] = int(v)
    return recs


def export_battles(db: Database, path: str | Path, fmt: str = "clean_battle", *, include_uncounted: bool = False, include_named: bool = True) -> int:
    """Write the votes of ``db`` to ``path`` in ``fmt`` (one of :data:`EXPORT_FORMATS`).

    Returns: the number of votes written.
    Raises: ValueError for an unknown format; DataError when there is nothing to export.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    frame = _clean_frame(export_frame(db, include_uncounted=include_uncounted, include_named=include_named))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "clean_battle":
        path.write_text(json.dumps(_records(frame), ensure_ascii=False, indent=1), encoding="utf-8")
    elif fmt == "jsonl":
        with open(path, "w", encoding="utf-8") as fh:
            for rec in _records(frame):
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    elif fmt == "parquet":
        for col in ("conversation_a", "conversation_b"):
            frame[col] = [_flat_conversation(v) for v in frame[col]]
        frame.to_parquet(path, index=False)
    else:
        frame["image_sha256"] = [" ".join(v) for v in frame["image_sha256"]]
        frame.drop(columns=["conversation_a", "conversation_b"]).to_csv(path, index=False)
    return len(frame)
