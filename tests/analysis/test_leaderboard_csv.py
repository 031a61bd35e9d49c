"""A leaderboard's CSV is written with the csv module while its table has not been read as a
DataFrame: the same bytes as pandas' to_csv(index=False, float_format="%.10g")."""

from __future__ import annotations

import numpy as np
import pandas as pd

import openarena
from openarena.analysis.report import csv_text

from tests.cli.test_extras import FIXTURE


def test_csv_text_writes_the_bytes_of_pandas_to_csv():
    columns = {
        "rank_ub": np.array([1, 2, 2, 10], dtype=np.int64),
        "model": ["plain", "with, comma", 'with "quotes"', "line\nbreak"],
        "rating": np.array([1315.156092123456, -0.0, np.nan, 1e-12]),
        "rating_q025": np.array([np.inf, -np.inf, 123456789012.5, 0.1 + 0.2]),
        "num_battles": np.array([14514.5, 0.0, 3.0, 1e20]),
        "flag": np.array([True, False, True, False]),
    }
    assert csv_text(columns) == pd.DataFrame(columns).to_csv(index=False, float_format="%.10g")



def test_csv_text_writes_missing_values_of_an_object_column_empty():
    # e.g. a column of ints with a gap (rank change of a model missing from the overall board)
    columns = {"model": ["a", "b", "c", "d"], "delta": [1, None, float("nan"), pd.NA], "note": ["x", None, 0.1 + 0.2, "y"]}
    text = csv_text(columns)
    assert text == pd.DataFrame(columns).to_csv(index=False, float_format="%.10g")
    assert text.splitlines()[2] == "b,,"


def test_a_board_written_before_and_after_its_table_is_read_gives_the_same_csv():
    board = openarena.leaderboard(str(FIXTURE), ci="sandwich")
    assert board.columns() is not None
    text = board.to_csv()  # from the columns, without pandas
    frame = board.to_frame()  # the DataFrame, built now
    assert board.columns() is None
    assert text == board.to_csv() == frame.to_csv(index=False, float_format="%.10g")
    assert list(frame.columns) == ["rank_ub", "model", "rating", "rating_q025", "rating_q975", "num_battles", "variance", "win_rate"]
    assert frame["rank_ub"].is_monotonic_increasing and frame["num_battles"].dtype == np.int64
    assert frame.loc[0, "model"] == "zeta-model" and round(frame.loc[0, "rating"], 1) == 1050.0
