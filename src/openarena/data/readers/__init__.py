"""Read battle data in any supported format: :func:`read_battles`.

The format is recognised from the content, not the file name (:func:`sniff_format`):

=============  =====================================================  ==========================
format         recognised by                                          result
=============  =====================================================  ==========================
parquet        magic bytes ``PAR1``                                   BattleTable (by columns)
json           a JSON list (first character ``[``)                    BattleTable (clean_battle)
pair_counts    a JSON object with keys models, X, Y (leaderbot)       PairCounts
jsonl          one JSON object per line                               BattleTable (clean_battle)
csv            any other text                                         BattleTable (by columns)
=============  =====================================================  ==========================

Row numbers in every error are 0-based record numbers of the source file: the list index (JSON),
line number - 1 (JSONL), the data row without the header (CSV) or the table row (Parquet).
Nothing is dropped silently: a bad row raises :class:`~openarena.errors.DataError` naming the
file, the row and the field; filtering is the job of :mod:`openarena.data.filters`.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Sequence

from typing import TYPE_CHECKING

from openarena.data.readers.clean_battle import parse_first_object, read_clean_battle_json, read_clean_battle_jsonl
from openarena.data.readers.hub import DATA_SUFFIXES, download, is_hub_url, parse_hf_url
from openarena.data.readers.pair_counts import is_pair_counts, read_pair_counts_json
from openarena.errors import DataError

if TYPE_CHECKING:
    from openarena.data.battles import BattleTable, PairCounts

__all__ = [
    "FORMATS",
    "read_battles",
    "read_file",
    "sniff_format",
    "read_clean_battle_json",
    "read_clean_battle_jsonl",
    "read_pair_counts_json",
    "read_csv_battles",
    "read_parquet_battles",
]

#: Accepted values of ``fmt``.
FORMATS: tuple[str, ...] = ("json", "jsonl", "pair_counts", "csv", "parquet")

_SNIFF_BYTES = 1 << 16


def __getattr__(name: str):
    if name in ("read_csv_battles", "read_parquet_battles"):  # pandas and pyarrow: imported when a table is read
        from openarena.data.readers import tabular

        return getattr(tabular, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def sniff_format(path: str | Path, source: str | None = None) -> str:
    """Recognise the format of a local file from its first bytes (one of :data:`FORMATS`).

    A leading '{' means leaderbot pair counts when the first line (or the whole file, if it is
    one pretty-printed object) is an object with keys models, X and Y, and JSONL otherwise.
    Raises: DataError for an empty file, and for gzip or zip archives (decompress them first).
    """
    path = Path(path)
    source = source or str(path)
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if not head:
        raise DataError("empty file", source, expected="battle records (JSON, JSONL, CSV or Parquet)")
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\x1f\x8b"):
        raise DataError("the file is gzip-compressed", source, expected="an uncompressed file (gunzip it first)")
    if head.startswith(b"PK\x03\x04"):
        raise DataError("the file is a zip archive", source, expected="an extracted JSON, JSONL, CSV or Parquet file")
    text = head[len(codecs.BOM_UTF8) :] if head.startswith(codecs.BOM_UTF8) else head
    text = text.lstrip(b" \t\r\n")
    if not text:
        if len(head) < _SNIFF_BYTES:
            raise DataError("empty file (only whitespace)", source, expected="battle records (JSON, JSONL, CSV or Parquet)")
        return "json"
    if text[:1] == b"[":
        return "json"
    if text[:1] == b"{":
        return _sniff_object(path)
    return "csv"


def _sniff_object(path: Path) -> str:
    lines: list[bytes] = []
    with open(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                lines.append(raw)
            if len(lines) == 2:
                break
    first = parse_first_object(lines[0].lstrip(codecs.BOM_UTF8))
    if isinstance(first, dict):
        return "pair_counts" if is_pair_counts(first) and len(lines) == 1 else "jsonl"
    if len(lines) > 1 and isinstance(parse_first_object(lines[1]), dict):
        return "jsonl"  # the first line is broken; the JSONL reader reports it as row 0
    return "pair_counts"  # one (pretty-printed or broken) JSON object


def read_file(path: str | Path, *, fmt: str | None = None, columns: Sequence[str] | None = None, source: str | None = None) -> BattleTable | PairCounts:
    """Read one local file (format sniffed unless ``fmt`` is given); ``source`` names it in
    messages (default: the path). See :func:`read_battles`."""
    path = Path(path)
    source = source or str(path)
    fmt = fmt or sniff_format(path, source)
    if fmt == "json":
        return read_clean_battle_json(path, source, columns)
    if fmt == "jsonl":
        return read_clean_battle_jsonl(path, source, columns)
    if fmt == "pair_counts":
        return read_pair_counts_json(path, source)
    if fmt == "csv":
        from openarena.data.readers.tabular import read_csv_battles

        return read_csv_battles(path, source, columns)
    if fmt == "parquet":
        from openarena.data.readers.tabular import read_parquet_battles

        return read_parquet_battles(path, source, columns)
    raise DataError(f"unknown format {fmt!r}", source, field="fmt", expected="one of " + ", ".join(FORMATS))


def _data_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in DATA_SUFFIXES and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def read_battles(source: str | Path, *, fmt: str | None = None, columns: Sequence[str] | None = None) -> BattleTable | PairCounts:
    """Read battle data from a file, a folder or a Hugging Face dataset URL.

    Parameters:
        source: a local file; a folder (every ``*.parquet, *.jsonl, *.ndjson, *.json, *.csv``
            below it, in sorted order, concatenated); or ``hf://datasets/OWNER/NAME[@REV][/PATH]``
            (see :mod:`openarena.data.readers.hub`). Registry names are resolved by
            :func:`openarena.data.registry.resolve` first.
        fmt: force a format (one of :data:`FORMATS`) instead of sniffing the content.
        columns: canonical columns to keep besides model_a, model_b, winner (None keeps all);
            saves memory on large dumps with conversations.

    Returns:
        :class:`BattleTable` (n rows, canonical schema of :mod:`openarena.data.schema`, index =
        source row numbers; several files: index 0..n-1 plus ``source_file`` and
        ``source_row`` columns) or :class:`PairCounts` for aggregated pair-count files.

    Raises:
        DataError naming the file, the 0-based row and the field for: a missing column, an
        unknown winner label, a model battling itself, an empty model name, an empty,
        truncated (JSON, JSONL line, Parquet) or non-UTF-8 file, a value of the wrong type, a
        missing file. SourceUnavailable when a hub dataset cannot be fetched.
    """
    if is_hub_url(source):
        from openarena.data.readers._common import combine  # pandas: several files are concatenated as rows

        ref = parse_hf_url(str(source))
        files = download(ref)
        return combine(((url, read_file(p, fmt=fmt, columns=columns, source=url)) for url, p in files), ref.url)
    path = Path(source)
    if path.is_dir():
        files = _data_files(path)
        if not files:
            raise DataError("no data files in the folder", str(source), expected="*.parquet, *.jsonl, *.json or *.csv files")
        from openarena.data.readers._common import combine
        return combine(((p.relative_to(path).as_posix(), read_file(p, fmt=fmt, columns=columns, source=str(p))) for p in files), str(source))
    if not path.exists():
        raise DataError("no such file or folder", str(source), expected="an existing path, a dataset name or hf://datasets/OWNER/NAME")
    return read_file(path, fmt=fmt, columns=columns, source=str(source))
