"""Fixtures for the engine tests: a generated Parquet folder and one Spark session."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

MODELS = [f"model-{k:02d}" for k in range(12)]
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def battles_frame(n: int, seed: int, *, timestamps: bool = False) -> pd.DataFrame:
    """n random battles over MODELS with every optional column the engines filter on,
    including the label variants the readers normalise (' model-03 ', 'both_bad')."""
    rng = np.random.default_rng(seed)
    theta = np.linspace(-1.5, 1.5, len(MODELS))
    a = rng.integers(0, len(MODELS), n)
    b = (a + rng.integers(1, len(MODELS), n)) % len(MODELS)
    p = 1 / (1 + np.exp(-(theta[a] - theta[b])))
    u = rng.random(n)
    winner = np.where(u < 0.1, "tie", np.where(u < 0.15, "tie (bothbad)", np.where(rng.random(n) < p, "model_a", "model_b")))
    winner = np.where((winner == "tie (bothbad)") & (rng.random(n) < 0.3), "both_bad", winner)
    names = np.asarray(MODELS, dtype=object)
    ma = names[a].copy()
    ma[ma == "model-03"] = np.where(rng.random((ma == "model-03").sum()) < 0.2, " model-03 ", "model-03")
    t = T0 + rng.uniform(0, 30 * 86400, n)
    frame = pd.DataFrame(
        {
            "model_a": ma,
            "model_b": names[b],
            "winner": winner,
            "anony": rng.random(n) < 0.8,
            "dedup_sampled": rng.random(n) < 0.9,
            "tstamp": pd.to_datetime(t, unit="s") if timestamps else t,
        }
    )
    return frame


def write_part(folder, name: str, frame: pd.DataFrame, dictionary: bool = True, timestamps: str | None = "us") -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, use_dictionary=dictionary, row_group_size=700, coerce_timestamps=timestamps, allow_truncated_timestamps=True)
    return str(path)


@pytest.fixture
def parquet_folder(tmp_path):
    """A folder of 4 Parquet partitions (2 in a sub-folder), 6,000 battles."""
    folder = tmp_path / "votes"
    for k in range(4):
        sub = "date=2023-11/" if k < 2 else "date=2023-12/"
        write_part(folder, f"{sub}part-{k}.parquet", battles_frame(1500, seed=k), dictionary=k % 2 == 0)
    return folder


@pytest.fixture(scope="session")
def spark():
    """One local[*] Spark session for the whole test session (start-up ~10 s)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("pyspark is not installed in CI (pip install -e '.[dev]')")
        pytest.skip("pyspark is not installed")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if os.environ.get("CI"):
            pytest.fail("java is not installed in CI (.ci/run installs openjdk-17-jre-headless)")
        pytest.skip("java is not installed (apt-get install openjdk-17-jre-headless)")
    from openarena.engines.spark_engine import spark_session, stop_session

    session = spark_session("local[2]")
    yield session
    stop_session()
