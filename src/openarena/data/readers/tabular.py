"""Battle tables in CSV or Parquet, recognised by their columns.

* Plain battle tables: ``model_a, model_b, winner`` plus any other columns, which are kept
  (e.g. arena-catalog's topic_clustering/.../recent_english_llm_category.csv with question_id
  and its category columns).
* arena-human-preference-55k (lmsys Kaggle competition; card: huggingface.co/datasets/
  lmarena-ai/arena-human-preference-55k, formerly lmsys/lmsys-arena-human-preference-55k):
  ``id, model_a, model_b, prompt, response_a, response_b, winner_model_a, winner_model_b,
  winner_tie``; the one-hot columns become ``winner`` (exactly one must be 1) and id becomes
  battle_id.
* arena-human-preference-100k (card: lmarena-ai/arena-human-preference-100k): the
  clean_battle fields plus ``judge_hash`` (-> judge) and ``dedup_tag`` (-> dedup_sampled).
* arena-human-preference-140k (card: lmarena-ai/arena-human-preference-140k): ``id``
  (-> battle_id), ``winner`` in model_a / model_b / tie / both_bad (-> 'tie (bothbad)'),
  ``evaluation_session_id`` (-> judge when there is no judge column), ``timestamp`` (-> tstamp),
  conversation_a/b, full_conversation, conv_metadata, category_tag, language, is_code.

Row numbers: the data row, 0-based, header excluded (CSV), the row of the table (Parquet).
"""

from __future__ import annotations

import csv
import io
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from openarena.data.battles import BattleTable
from openarena.data.readers._common import build_table, source_fields
from openarena.errors import DataError

_STRING_COLUMNS = {"model_a": "str", "model_b": "str", "winner": "str"}


def _csv_utf8_error(path: Path, source: str, err: UnicodeDecodeError) -> DataError:
    """Locate the first non-UTF-8 byte of a CSV file as a data row."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        start, reason = err.start, err.reason
    except UnicodeDecodeError as e:
        start, reason = e.start, e.reason
    prefix = data[:start].decode("utf-8", errors="replace")
    records = list(csv.reader(io.StringIO(prefix)))
    record = len(records) if (not prefix or prefix.endswith(("\n", "\r"))) else len(records) - 1
    row = record - 1 if record >= 1 else None
    where = "in the header, " if row is None else ""
    return DataError(f"not valid UTF-8 {where}at byte {start} ({reason})", source, row=row, expected="a UTF-8 encoded file")


def _csv_parser_error(err: Exception, source: str) -> DataError:
    msg = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
    row = None
    m = re.search(r"in line (\d+)", msg)
    if m:
        row = int(m.group(1)) - 2  # 1-based file line, header on line 1
    m = re.search(r"starting at row (\d+)", msg)
    if m:
        row = int(m.group(1)) - 1  # record number, header is record 0
    what = "truncated file or unclosed quote" if "EOF" in msg else "malformed CSV"
    return DataError(f"{what}: {msg}", source, row=row if row is None or row >= 0 else None, expected="a CSV file with a header row")


def read_csv_battles(path: str | Path, source: str | None = None, columns: Sequence[str] | None = None) -> BattleTable:
    """Read a battle table from CSV (comma-separated, header row, UTF-8).

    Only empty fields are missing values (a model called 'NA' stays 'NA'); model_a, model_b
    and winner are read as strings. Columns are mapped as described in the module docstring.
    Parameters: columns, canonical columns to keep besides the required ones (None keeps all).
    Returns: BattleTable of n rows, index = data row 0..n-1.
    Raises: DataError naming the file, the data row and the field (see
    :func:`openarena.data.readers._common.canonicalize`), and for an empty, truncated,
    malformed or non-UTF-8 file.
    """
    path = Path(path)
    source = source or str(path)
    keep = source_fields(columns)
    try:
        frame = pd.read_csv(
            path,
            encoding="utf-8",
            keep_default_na=False,
            na_values=[""],
            dtype=_STRING_COLUMNS,
            usecols=(lambda c: c in keep) if keep is not None else None,
            low_memory=False,
        )
    except UnicodeDecodeError as err:
        raise _csv_utf8_error(path, source, err) from None
    except pd.errors.EmptyDataError:
        raise DataError("empty file", source, expected="a CSV file with a header row model_a, model_b, winner") from None
    except pd.errors.ParserError as err:
        raise _csv_parser_error(err, source) from None
    return build_table(frame, source, columns)


def read_parquet_battles(path: str | Path, source: str | None = None, columns: Sequence[str] | None = None) -> BattleTable:
    """Read a battle table from a Parquet file (columns mapped as for CSV).

    Nested columns (conversations, conv_metadata, category_tag) come back as Python lists /
    dicts (lists of structs as numpy object arrays of dicts).
    Returns: BattleTable of n rows, index = row 0..n-1.
    Raises: DataError naming the file for a truncated or corrupt file, and the row and field
    for bad values.
    """
    path = Path(path)
    source = source or str(path)
    keep = source_fields(columns)
    try:
        names = pq.read_schema(path).names
        # pq.read_table (the dataset reader) decodes row groups and columns on every core:
        # 2-3x faster than ParquetFile.read on 50M rows, and with less memory
        table = pq.read_table(path, columns=[c for c in names if keep is None or c in keep])
    except (pa.ArrowException, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"not a readable Parquet file (truncated or corrupt): {first}", source, expected="a complete Parquet file") from None
    table = _one_chunk_dictionaries(table)
    # each column its own block (no copy into a 2-D block), Arrow's buffers released column by
    # column as they are converted: the same frame with about one copy of the data in memory
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    return build_table(frame, source, columns)


def _one_chunk_dictionaries(table: pa.Table) -> pa.Table:
    """``table`` with each dictionary (categorical) column concatenated into one chunk.

    pq.read_table returns one chunk per batch of a row group (390 on 50M rows); to_pandas
    unifies and converts those several times slower than Arrow concatenates them (0.5 vs 0.15
    s CPU on 50M rows x 3 columns). The values and the pandas categories come out the same. A
    column Arrow cannot concatenate (indices too narrow for the unified dictionary) is left as
    it is."""
    todo = [i for i, fld in enumerate(table.schema) if pa.types.is_dictionary(fld.type) and table.column(i).num_chunks > 1]

    def combine(i: int) -> pa.Array | None:
        try:
            return table.column(i).combine_chunks()
        except pa.ArrowException:
            return None

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # Arrow releases the GIL
        combined = list(pool.map(combine, todo))
    for i, arr in zip(todo, combined):
        if arr is not None:
            table = table.set_column(i, table.schema[i].name, pa.chunked_array([arr]))
    return table
