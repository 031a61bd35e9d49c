"""Parquet files whose model_a / model_b / winner are dictionary (categorical) columns give the
same battles, pair counts and errors as the same rows written as plain strings to CSV."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openarena.data.battles import aggregate
from openarena.data.readers import read_battles
from openarena.errors import DataError


def _dictionary(indices: list[int], names: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(names, pa.string()))


def _write_both(tmp_path, columns: dict[str, pa.Array]) -> tuple[str, str]:
    """The same rows as a Parquet file of dictionary columns and as a CSV file."""
    parquet = tmp_path / "battles.parquet"
    pq.write_table(pa.table(columns), parquet)
    plain = {k: v.dictionary_decode().to_pylist() for k, v in columns.items()}
    csv = tmp_path / "battles.csv"
    csv.write_text("model_a,model_b,winner\n" + "".join(f"{a},{b},{w}\n" for a, b, w in zip(*plain.values())))
    return str(parquet), str(csv)


def _same_counts(parquet: str, csv: str) -> None:
    got, want = aggregate(read_battles(parquet)), aggregate(read_battles(csv))
    assert got.models == want.models
    np.testing.assert_array_equal(got.pairs, want.pairs)
    np.testing.assert_array_equal(got.counts, want.counts)


def test_both_bad_in_a_winner_dictionary_is_read_as_tie_bothbad(tmp_path):
    # the dictionary has 'both_bad' (the 140k dataset's label) but not 'tie (bothbad)'
    parquet, csv = _write_both(tmp_path, {
        "model_a": _dictionary([0, 1, 0], ["x", "y"]),
        "model_b": _dictionary([0, 1, 2], ["y", "x", "z"]),
        "winner": _dictionary([0, 1, 2], ["model_a", "both_bad", "tie"]),
    })
    table = read_battles(parquet)
    assert table.frame["winner"].astype(str).tolist() == ["model_a", "tie (bothbad)", "tie"]
    _same_counts(parquet, csv)
    assert aggregate(table).counts.tolist() == [[1, 0, 0, 1], [0, 0, 1, 0]]


def test_both_bad_beside_tie_bothbad_and_a_missing_winner(tmp_path):
    # both spellings in one dictionary are merged; a missing winner is still named by its row
    winner = pa.DictionaryArray.from_arrays(pa.array([0, 1, 2], pa.int8()), pa.array(["both_bad", "tie (bothbad)", "model_a"]))
    parquet, csv = _write_both(tmp_path, {"model_a": _dictionary([0, 0, 0], ["x"]), "model_b": _dictionary([0, 0, 0], ["y"]), "winner": winner})
    _same_counts(parquet, csv)
    assert aggregate(read_battles(parquet)).counts.tolist() == [[1, 0, 0, 2]]
    missing = pa.DictionaryArray.from_arrays(pa.array([0, None, 2], pa.int8()), pa.array(["both_bad", "tie (bothbad)", "model_a"]))
    pq.write_table(pa.table({"model_a": _dictionary([0, 0, 0], ["x"]), "model_b": _dictionary([0, 0, 0], ["y"]), "winner": missing}), tmp_path / "m.parquet")
    with pytest.raises(DataError) as err:
        read_battles(tmp_path / "m.parquet")
    assert (err.value.row, err.value.field) == (1, "winner")
    assert "missing winner" in str(err.value)


def test_white_space_in_a_model_dictionary_keeps_the_column_categorical(tmp_path):
    # ' y' and 'y' are one model; a blank unused category changes nothing; the column stays a
    # category (the counting on codes), not millions of Python strings
    parquet, csv = _write_both(tmp_path, {
        "model_a": _dictionary([0, 1, 0], ["x", " y", "  ", "q"]),
        "model_b": _dictionary([0, 1, 2], ["y ", "x", "z"]),
        "winner": _dictionary([0, 1, 2], ["model_a", "tie", "model_b"]),
    })
    frame = read_battles(parquet).frame
    assert frame["model_a"].dtype == "category" and frame["model_b"].dtype == "category"
    assert frame["model_a"].astype(str).tolist() == ["x", "y", "x"]
    _same_counts(parquet, csv)
