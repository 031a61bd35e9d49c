"""Style control at scale: the contextual fit from sums DuckDB computes over Parquet files (the
Newton step local) equals the in-memory fit on the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from openarena.data.readers import read_battles
from openarena.engines.contextual import DuckDBContextualSums
from openarena.errors import DataError
from openarena.ratings.contextual import fit_contextual_bt
from openarena.ratings.contextual_sums import fit_contextual_sums
from openarena.ratings.covariates import contextual_data

from tests.engines.conftest import write_part

FEATURES = ("tokens", "headers", "lists", "bold")


def style_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    m = 9
    theta = np.linspace(-1, 1, m)
    length = np.exp(0.3 * rng.normal(size=m) + 0.2 * theta)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    cols = {}
    ratios = []
    for f, rate in zip(FEATURES, (400.0, 1.5, 4.0, 3.0)):
        fa = rng.poisson(rate * (length[a] if f == "tokens" else 1.0) * np.exp(0.5 * rng.normal(size=n)))
        fb = rng.poisson(rate * (length[b] if f == "tokens" else 1.0) * np.exp(0.5 * rng.normal(size=n)))
        cols[f"{f}_a"], cols[f"{f}_b"] = fa, fb
        ratios.append((fa - fb) / (fa + fb + 1.0))
    z = np.column_stack(ratios)
    z = (z - z.mean(0)) / z.std(0)
    eta = theta[a] - theta[b] + z @ np.array([0.3, 0.05, 0.1, 0.02])
    u = rng.random(n)
    winner = np.where(u < 0.1, "tie", np.where(rng.random(n) < 1 / (1 + np.exp(-eta)), "model_a", "model_b"))
    names = np.array([f"model-{k}" for k in range(m)], dtype=object)
    return pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": winner, **cols})


def test_duckdb_sums_fit_equals_the_in_memory_fit(tmp_path):
    folder = tmp_path / "style"
    for k in range(3):
        write_part(folder, f"part-{k}.parquet", style_frame(4000, seed=k))
    sums = DuckDBContextualSums(str(folder), "style")
    remote = fit_contextual_sums(sums)
    sums.close()
    data, infos = contextual_data(read_battles(folder), "style")
    local = fit_contextual_bt(data)
    assert remote.models == data.models and remote.names == data.names
    np.testing.assert_allclose(sums.mean, [i.mean for i in infos], rtol=1e-12)
    np.testing.assert_allclose(sums.sd, [i.sd for i in infos], rtol=1e-12)
    np.testing.assert_allclose(remote.theta, local.theta, rtol=0, atol=1e-8)
    np.testing.assert_allclose(remote.beta, local.beta, rtol=0, atol=1e-8)
    np.testing.assert_allclose(remote.hessian, local.hessian, rtol=1e-8)
    assert abs(local.beta[0] - 0.3) < 0.1  # the length effect is found, so agreement means something


def test_missing_style_column_is_named(tmp_path):
    folder = tmp_path / "bad"
    write_part(folder, "p.parquet", style_frame(500, seed=1).drop(columns=["bold_b"]))
    with pytest.raises(DataError, match="bold_b"):
        DuckDBContextualSums(str(folder), "markdown")


def test_spark_sums_fit_equals_the_in_memory_fit(tmp_path, spark):
    """Style control with Spark (local[2], Debian's OpenJDK 17): the gradient and Hessian sums
    are computed by Spark over the Parquet partitions, the Newton step locally; the coefficients
    and ratings equal the numpy fit on the same rows."""
    from openarena.engines.contextual import SparkContextualSums

    folder = tmp_path / "style"
    for k in range(3):
        write_part(folder, f"part-{k}.parquet", style_frame(3000, seed=10 + k))
    sums = SparkContextualSums(str(folder), "style")
    remote = fit_contextual_sums(sums)
    sums.close()
    data, infos = contextual_data(read_battles(folder), "style")
    local = fit_contextual_bt(data)
    assert remote.models == data.models and remote.names == data.names and sums.n_rows == data.n
    np.testing.assert_allclose(sums.mean, [i.mean for i in infos], rtol=1e-12)
    np.testing.assert_allclose(sums.sd, [i.sd for i in infos], rtol=1e-12)
    np.testing.assert_allclose(remote.beta, local.beta, rtol=0, atol=1e-8)
    np.testing.assert_allclose(remote.theta, local.theta, rtol=0, atol=1e-8)
    np.testing.assert_allclose(remote.hessian, local.hessian, rtol=1e-8)
    assert abs(local.beta[0] - 0.3) < 0.1


def test_spark_sums_name_a_missing_column(tmp_path, spark):
    from openarena.engines.contextual import SparkContextualSums

    folder = tmp_path / "bad"
    write_part(folder, "p.parquet", style_frame(500, seed=1).drop(columns=["lists_a"]))
    with pytest.raises(DataError, match="lists_a"):
        SparkContextualSums(str(folder), "markdown")


@pytest.mark.parametrize("bad", [np.nan, None, np.inf, -1.0])
def test_a_missing_non_finite_or_negative_style_value_is_named(tmp_path, bad):
    # the in-memory path names the row; DuckDB left a NULL / NaN row out of the fit (other
    # coefficients, no word) and called an inf or negative count "no variance"
    frame = style_frame(500, seed=1).astype({"lists_b": float})
    frame.loc[3, "lists_b"] = bad
    folder = tmp_path / "bad"
    write_part(folder, "p.parquet", frame)
    with pytest.raises(DataError) as err:
        DuckDBContextualSums(str(folder), "style")
    assert err.value.field == "lists_b" and "1 row(s)" in str(err.value)
    with pytest.raises(DataError) as err:
        contextual_data(read_battles(folder), "style")
    assert err.value.field == "lists_b"


def test_spark_names_a_missing_or_negative_style_value(tmp_path, spark):
    from openarena.engines.contextual import SparkContextualSums

    for k, bad in enumerate((np.nan, -1.0)):
        frame = style_frame(300, seed=2).astype({"lists_b": float})
        frame.loc[3, "lists_b"] = bad
        folder = tmp_path / f"bad{k}"
        write_part(folder, "p.parquet", frame)
        with pytest.raises(DataError) as err:
            SparkContextualSums(str(folder), "style")
        assert err.value.field == "lists_b" and "1 row(s)" in str(err.value)


def _names_with_white_space(seed: int) -> pd.DataFrame:
    frame = style_frame(600, seed=seed)
    frame.loc[:50, "model_a"] = frame.loc[:50, "model_a"] + "\t"  # SQL trim strips spaces only
    frame.loc[51:70, "model_b"] = " " + frame.loc[51:70, "model_b"] + "\u00a0"
    return frame


def test_duckdb_strips_model_names_as_the_readers_do(tmp_path):
    # 'model-1\t' was a tenth model on DuckDB, one model with 'model-1' in memory
    write_part(tmp_path / "ws", "p.parquet", _names_with_white_space(4))
    sums = DuckDBContextualSums(str(tmp_path / "ws"), "style")
    remote = fit_contextual_sums(sums)
    sums.close()
    data, _ = contextual_data(read_battles(tmp_path / "ws"), "style")
    local = fit_contextual_bt(data)
    assert remote.models == data.models == tuple(f"model-{k}" for k in range(9))
    np.testing.assert_allclose(remote.theta, local.theta, rtol=0, atol=1e-8)
    np.testing.assert_allclose(remote.beta, local.beta, rtol=0, atol=1e-8)


def test_spark_strips_model_names_as_the_readers_do(tmp_path, spark):
    from openarena.engines.contextual import SparkContextualSums

    write_part(tmp_path / "ws", "p.parquet", _names_with_white_space(5))
    remote = fit_contextual_sums(SparkContextualSums(str(tmp_path / "ws"), "style"))
    local = fit_contextual_bt(contextual_data(read_battles(tmp_path / "ws"), "style")[0])
    assert remote.models == local.models == tuple(f"model-{k}" for k in range(9))
    np.testing.assert_allclose(remote.beta, local.beta, rtol=0, atol=1e-8)
