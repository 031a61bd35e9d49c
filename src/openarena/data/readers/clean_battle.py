"""FastChat ``clean_battle`` records: a JSON list (``clean_battle_YYYYMMDD.json``) or JSON Lines.

Source of the format: lm-sys/FastChat, fastchat/serve/monitor/clean_battle_data.py (the record
fields question_id, model_a, model_b, winner, judge, conversation_a/b, turn, anony, language,
tstamp) and the public releases built from it (clean_battle_20240814_public.json adds
dedup_tag {high_freq, sampled}, category_tag, conv_metadata). The same reader serves other
record files with model_a, model_b and winner, e.g. Arena-Hard-Auto's arena_hard_battles.jsonl.

Memory: both readers stream. A JSON list is decoded one record at a time from a 4 MiB text
window (``json.JSONDecoder.raw_decode``), so the whole file is never held as text nor as one
list of dicts; records become a DataFrame every 50,000 records, strings are stored as Arrow
strings, and the keys of the nested dicts are interned (one copy per distinct key instead of
one per record). Peak memory is the final frame plus one chunk. Measured on a synthetic
505 MB clean_battle list of 500,000 records shaped like clean_battle_20240814_public.json
(dedup_tag, category_tag, conv_metadata, no conversations): all fields kept, 23 s and
1.6 GB peak RSS (3.1x the file; a plain ``json.load`` of the same file peaks at 2.2 GB);
``columns=("tstamp", "anony", "dedup_sampled")``, 13 s and 0.4 GB (0.8x). So the 2.1 GB
public dump needs about 1.7 GB with the columns a leaderboard uses and about 6.5 GB with
every nested field. Conversations, when present, are kept as Python lists of dicts: pass
``columns=`` (canonical names) to leave out what you do not need.
"""

from __future__ import annotations

import codecs
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from openarena.data.battles import BattleTable
from openarena.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

CHUNK_RECORDS = 50_000
READ_BYTES = 1 << 22
#: A record longer than this (in characters) is reported as malformed instead of read further.
MAX_RECORD_CHARS = 1 << 26

_WS = re.compile(r"[ \t\n\r]*")


class _TextWindow:
    """A sliding window of decoded text over a UTF-8 file, with the position of its start."""

    def __init__(self, fh, source: str) -> None:
        self.fh = fh
        self.source = source
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.buf = ""
        self.pos = 0
        self.base = 0  # characters dropped from the front so far
        self.bytes_read = 0
        self.eof = False
        self.pending: tuple[int, str] | None = None  # (byte offset, reason) of a UTF-8 error ahead
        self.record = 0  # record being read, for error messages

    def fill(self) -> bool:
        """Append the next piece of the file; False at end of file."""
        if self.pending is not None:
            offset, reason = self.pending
            raise DataError(
                f"not valid UTF-8 at byte {offset} ({reason})",
                self.source,
                row=self.record,
                expected="a UTF-8 encoded file",
            )
        if self.eof:
            return False
        chunk = self.fh.read(READ_BYTES)
        final = not chunk
        try:
            text = self.decoder.decode(chunk, final=final)
        except UnicodeDecodeError as err:
            good = chunk[: err.start] if err.start <= len(chunk) else chunk
            text = codecs.decode(good, "utf-8", errors="ignore") if good else ""
            self.pending = (self.bytes_read + err.start, err.reason)
        self.bytes_read += len(chunk)
        if self.buf and self.pos > (1 << 20) and self.pos > len(self.buf) // 2:
            self.base += self.pos
            self.buf = self.buf[self.pos :]
            self.pos = 0
        self.buf += text
        if final:
            self.eof = True
        if self.base == 0 and self.buf.startswith("\ufeff") and self.pos == 0:
            self.pos = 1
        return bool(text) or self.pending is not None or not self.eof

    def peek(self) -> str:
        """The next non-whitespace character ('' at end of file), without consuming it."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""


def _interning_decoder() -> json.JSONDecoder:
    """A decoder that shares the key strings of all objects (sys.intern): the nested dicts of
    millions of records (category_tag, conv_metadata, ...) then hold one copy of each key
    instead of one per record, about halving their memory."""
    intern = sys.intern
    return json.JSONDecoder(object_pairs_hook=lambda pairs: {intern(k): v for k, v in pairs})


def iter_json_list(path: Path, source: str, intern_keys: bool = False) -> Iterator[tuple[int, dict]]:
    """Yield (index, record) for each object of the top-level JSON list in ``path``.

    ``intern_keys``: share key strings across records (see :func:`_interning_decoder`).

    Raises: DataError with row = the list index for a record that is truncated, malformed, not
    an object or not UTF-8; for a file that is empty, not a list, or does not close its list.
    """
    decoder = _interning_decoder() if intern_keys else json.JSONDecoder()
    with open(path, "rb") as fh:
        w = _TextWindow(fh, source)
        c = w.peek()
        if c == "":
            raise DataError("empty file", source, expected="a JSON list of battle records")
        if c != "[":
            raise DataError(f"the file starts with {c!r}, not a JSON list", source, expected="a JSON list of battle records")
        w.pos += 1
        index = 0
        while True:
            w.record = index
            c = w.peek()
            if c == "":
                raise DataError("truncated file: the JSON list ends without ']'", source, row=index, expected="a complete JSON list")
            if c == "]":
                w.pos += 1
                if w.peek() != "":
                    raise DataError("extra data after the end of the JSON list", source, expected="nothing after ']'")
                return
            if index > 0:
                if c != ",":
                    raise DataError(f"expected ',' or ']' after record {index - 1}, found {c!r}", source, row=index, expected="a JSON list")
                w.pos += 1
                c = w.peek()
                if c == "":
                    raise DataError("truncated file: the JSON list ends after ','", source, row=index, expected="a complete JSON list")
            if c != "{":
                raise DataError(f"record starts with {c!r}, not a JSON object", source, row=index, expected="a JSON object per battle")
            while True:
                try:
                    obj, end = decoder.raw_decode(w.buf, w.pos)
                    break
                except json.JSONDecodeError as err:
                    # An error before the end of the window is an error whatever follows,
                    # except a string that runs to the end (it may close in the next piece).
                    incomplete = err.pos >= len(w.buf) - 6 or err.msg.startswith("Unterminated string")
                    if incomplete and len(w.buf) - w.pos <= MAX_RECORD_CHARS and w.fill():
                        continue
                    line, col = line_column(path, w.base + err.pos)
                    what = "truncated file: " if incomplete and w.eof else ""
                    raise DataError(f"{what}not valid JSON at line {line}, column {col}: {err.msg}", source, row=index, expected="a complete JSON object") from None
            w.pos = end
            yield index, obj
            index += 1


def line_column(path: Path, offset: int) -> tuple[int, int]:
    """1-based (line, column) of character ``offset`` of the UTF-8 text file at ``path`` (read
    again on this error path only)."""
    text = Path(path).read_bytes().decode("utf-8-sig", errors="replace")[:offset]
    line = text.count("\n") + 1
    return line, offset - (text.rfind("\n") + 1) + 1


def iter_jsonl(path: Path, source: str, intern_keys: bool = False) -> Iterator[tuple[int, dict]]:
    """Yield (line number - 1, record) for each non-blank line of a JSON Lines file.

    Raises: DataError with row = line number - 1 for a line that is not UTF-8, not valid JSON
    (reported as truncated when it is the last line and the file does not end with a newline)
    or not a JSON object.
    """
    loads = _interning_decoder().decode if intern_keys else json.loads
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh):
            if lineno == 0 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(
                    f"not valid UTF-8 at byte {err.start} of the line ({err.reason})",
                    source,
                    row=lineno,
                    expected="a UTF-8 encoded file",
                ) from None
            try:
                obj = loads(text)
            except json.JSONDecodeError as err:
                if not raw.endswith(b"\n") and fh.read(1) == b"":
                    msg = f"truncated last line: not valid JSON at line {lineno + 1}, column {err.colno}: {err.msg}"
                else:
                    msg = f"not valid JSON at line {lineno + 1}, column {err.colno}: {err.msg}"
                raise DataError(msg, source, row=lineno, expected="one complete JSON object per line") from None
            if not isinstance(obj, dict):
                raise DataError(f"line holds a JSON {type(obj).__name__}, not an object", source, row=lineno, expected="one JSON object per line")
            yield lineno, obj


def records_to_frame(records: Iterator[tuple[int, dict]], source: str, keep: set[str] | None = None) -> pd.DataFrame:
    """Collect (row, record) pairs into one DataFrame indexed by row, 50,000 records at a time.

    ``keep``: source field names to keep (None keeps every field).
    Raises: DataError if there is no record at all.
    """
    import pandas as pd

    chunks: list[pd.DataFrame] = []
    rows: list[int] = []
    batch: list[dict] = []

    def flush() -> None:
        if batch:
            chunks.append(pd.DataFrame(batch, index=pd.Index(rows, dtype="int64")))
            rows.clear()
            batch.clear()

    for row, rec in records:
        if keep is not None:
            rec = {k: v for k, v in rec.items() if k in keep}
        rows.append(row)
        batch.append(rec)
        if len(batch) >= CHUNK_RECORDS:
            flush()
    flush()
    if not chunks:
        raise DataError("no battle records in the file", source, expected="at least one battle")
    if len(chunks) == 1:
        return chunks[0]
    return pd.concat(chunks, sort=False)


def read_clean_battle_json(path: str | Path, source: str | None = None, columns: Sequence[str] | None = None) -> BattleTable:
    """Read a FastChat clean_battle JSON list.

    Parameters: path; source, the name used in messages (default the path); columns, canonical
    columns to keep besides model_a, model_b, winner (None keeps every field).
    Returns: BattleTable of n rows (one per record, index = list index 0..n-1) with the
    canonical columns of :func:`openarena.data.readers._common.canonicalize`: battle_id (from
    question_id), tstamp (float Unix seconds), anony (boolean), dedup_sampled (boolean, from
    dedup_tag.sampled), turn (Int64); the other fields (judge, language, conversation_a/b,
    dedup_tag, category_tag, conv_metadata, ...) as they are in the file.
    Raises: DataError naming the file, the record (list index) and the field.
    """
    from openarena.data.readers._common import build_table, source_fields  # pandas: only when rows are read

    path = Path(path)
    source = source or str(path)
    keep = source_fields(columns)
    frame = records_to_frame(iter_json_list(path, source, intern_keys=keep is None), source, keep)
    return build_table(frame, source, columns)


def read_clean_battle_jsonl(path: str | Path, source: str | None = None, columns: Sequence[str] | None = None) -> BattleTable:
    """Read clean_battle records from JSON Lines (one object per line; blank lines skipped).

    Same result as :func:`read_clean_battle_json`; the index holds line number - 1.
    Raises: DataError naming the file, the row (line number - 1) and the field.
    """
    from openarena.data.readers._common import build_table, source_fields  # pandas: only when rows are read

    path = Path(path)
    source = source or str(path)
    keep = source_fields(columns)
    frame = records_to_frame(iter_jsonl(path, source, intern_keys=keep is None), source, keep)
    return build_table(frame, source, columns)


def parse_first_object(line: bytes) -> Any:
    """json.loads of one line, or None if it does not parse (used for sniffing)."""
    try:
        return json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
