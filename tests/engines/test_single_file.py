"""One Parquet file counted without its rows (openarena.engines.single_file) gives the pair
counts of reading the rows and aggregating them, and hands every file the reader must map or
report back to it (None)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openarena.data.battles import aggregate
from openarena.data.readers import read_battles
from openarena.engines.single_file import file_pair_counts

from tests.engines.conftest import battles_frame


def _same(fast, path):
    ref = aggregate(read_battles(path))
    assert fast is not None
    assert fast.models == ref.models and fast.source == ref.source and fast.steps == ref.steps == ()
    np.testing.assert_array_equal(fast.pairs, ref.pairs)
    np.testing.assert_array_equal(fast.counts, ref.counts)


def _canonical(seed: int, n: int = 3000) -> pd.DataFrame:
    frame = battles_frame(n, seed)[["model_a", "model_b", "winner"]].copy()
    frame["winner"] = frame["winner"].replace({"both_bad": "tie (bothbad)"})
    return frame


def test_dictionary_row_groups_plain_strings_and_padded_keys_count_as_the_reader_does(tmp_path):
    frame = _canonical(1)
    # two row groups whose dictionaries differ (the second lacks a model), categorical columns
    path = tmp_path / "groups.parquet"
    cats = frame.astype("category")
    with pq.ParquetWriter(path, pa.Table.from_pandas(cats.iloc[:10], preserve_index=False).schema) as w:
        w.write_table(pa.Table.from_pandas(cats.iloc[:1500], preserve_index=False))
        w.write_table(pa.Table.from_pandas(cats.iloc[1500:][cats["model_a"].iloc[1500:] != "model-03"], preserve_index=False))
    _same(file_pair_counts(path, str(path)), str(path))
    # plain string columns, and ' model-03 ' beside 'model-03' (one model, as the reader strips keys)
    path = tmp_path / "plain.parquet"
    padded = frame.astype(object)
    padded.loc[padded.index[::7], "model_a"] = padded["model_a"].iloc[::7].map(lambda m: f" {m} ")
    pq.write_table(pa.Table.from_pandas(padded, preserve_index=False), path)
    fast = file_pair_counts(path, str(path))
    _same(fast, str(path))
    assert len(fast.models) == 12 and fast.total == 3000


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.assign(winner=f["winner"].replace({"tie (bothbad)": "both_bad"})),  # an alias the reader maps
        lambda f: f.assign(winner=f["winner"].where(f.index != 5, None)),  # a missing winner
        lambda f: f.assign(model_b=f["model_b"].where(f.index != 9, f["model_a"])),  # a self-battle
        lambda f: f.assign(model_a=f["model_a"].where(f.index != 2, "  ")),  # an empty key
        lambda f: f.rename(columns={"winner": "outcome"}),  # another schema
        lambda f: f.iloc[:0],  # no battles
    ],
)
def test_what_the_reader_maps_or_reports_is_left_to_it(tmp_path, change):
    path = tmp_path / "votes.parquet"
    pq.write_table(pa.Table.from_pandas(change(_canonical(2)), preserve_index=False), path)
    assert file_pair_counts(path) is None


def test_a_file_that_is_not_parquet_is_left_to_the_reader(tmp_path):
    path = tmp_path / "votes.parquet"
    path.write_text("model_a,model_b,winner\nx,y,tie\n")
    assert file_pair_counts(path) is None
