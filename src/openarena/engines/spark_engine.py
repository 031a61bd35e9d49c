"""The Apache Spark engine (PySpark): the same grouped count as the other engines, run where a
Spark cluster can read the files (``local[*]`` by default; a master URL such as
``spark://host:7077`` or ``yarn`` for a real deployment, from the ``master`` argument or
``OPENARENA_SPARK_MASTER``).

Spark needs Java 17+ (Debian: ``apt-get install openjdk-17-jre-headless``). One session per
process is created on first use and reused (start-up takes ~10 s).

Source: Spark SQL ``DataFrameReader.parquet``, ``_metadata.file_path``
(spark.apache.org/docs/latest/sql-data-sources-parquet.html).
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlparse

import pandas as pd

from openarena.engines.plan import FilePlan, RowFilters

_SESSION = None
_MASTER = None


def spark_session(master: str | None = None):
    """The process's SparkSession for ``master`` (default ``OPENARENA_SPARK_MASTER`` or
    ``local[*]``), created on first use with the UI off and the session time zone UTC; with
    ``master=None`` an existing session is reused whatever its master.
    Raises: ImportError with the install command when pyspark is missing; RuntimeError when
    a session for another master already runs in this process."""
    global _SESSION, _MASTER
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - depends on the install
        raise ImportError("the Spark engine needs pyspark and Java 17: pip install 'openarena[engines]'; apt-get install openjdk-17-jre-headless") from None
    if _SESSION is not None:
        if master is not None and master != _MASTER:
            raise RuntimeError(f"a Spark session for {_MASTER} already runs in this process (asked for {master})")
        return _SESSION
    master = master or os.environ.get("OPENARENA_SPARK_MASTER") or "local[*]"
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    _SESSION = (
        SparkSession.builder.master(master)
        .appName("openarena")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.extraJavaOptions", "-Dlog4j.rootLogger=ERROR")
        .getOrCreate()
    )
    _SESSION.sparkContext.setLogLevel("ERROR")
    _MASTER = master
    return _SESSION


def stop_session() -> None:
    """Stop the process's SparkSession (if any)."""
    global _SESSION, _MASTER
    if _SESSION is not None:
        _SESSION.stop()
    _SESSION = None
    _MASTER = None


def _local_path(uri: str) -> str:
    p = urlparse(uri)
    return unquote(p.path) if p.scheme in ("file", "") else uri


def group_counts(plan: FilePlan, filters: RowFilters, *, master: str | None = None) -> pd.DataFrame:
    """Grouped counts of every file of ``plan`` (see :mod:`openarena.engines.plan`)."""
    from pyspark.sql import functions as F

    if not plan.files:
        return pd.DataFrame(columns=["file", "model_a", "model_b", "winner", *filters.flags(), "n"])
    if plan.nanosecond_timestamps:
        from openarena.errors import DataError

        raise DataError(
            "tstamp is a nanosecond Parquet timestamp, which Spark cannot read",
            plan.files[0].path,
            field="tstamp",
            expected="microsecond timestamps (pyarrow: coerce_timestamps='us') or Unix seconds, or --engine duckdb",
        )
    spark = spark_session(master)
    df = spark.read.parquet(*[f.path for f in plan.files])
    cols = [
        F.col("_metadata.file_path").alias("file"),
        F.col("model_a").cast("string").alias("model_a"),
        F.col("model_b").cast("string").alias("model_b"),
        F.col("winner").cast("string").alias("winner"),
    ]
    if filters.anony:
        cols.append(F.col("anony").cast("boolean").alias("anony"))
    if filters.dedup:
        cols.append(F.col("dedup_sampled").cast("boolean").alias("dedup_sampled"))
    if filters.dates:
        if plan.tstamp == "timestamp":
            sec = F.unix_micros(F.col("tstamp").cast("timestamp")) / F.lit(1e6)
        else:
            sec = F.col("tstamp").cast("double")
        cond = None
        if filters.since is not None:
            cond = sec >= F.lit(float(filters.since))
        if filters.until is not None:
            c2 = sec < F.lit(float(filters.until))
            cond = c2 if cond is None else (cond & c2)
        cols.append(cond.alias("in_range"))
    keys = [c for c in ["file", "model_a", "model_b", "winner", *filters.flags()]]
    out = df.select(*cols).groupBy(*keys).count().withColumnRenamed("count", "n").toPandas()
    out["file"] = out["file"].map(_local_path)
    out["n"] = out["n"].astype("int64")
    for col in filters.flags():
        out[col] = out[col].astype("boolean")
    return out
