"""Style control where the votes live: the contextual Bradley-Terry fit's log-likelihood,
gradient and Hessian are sums over rows, so DuckDB computes them over the Parquet files and
only O(n_models^2 * K^2) numbers come back per Newton iteration; the Newton step itself is
taken locally (:func:`openarena.ratings.contextual_sums.fit_contextual_sums`). Apache Spark
does the same where a cluster holds the files (:class:`SparkContextualSums`).

Covariates: FastChat's style ratios (f_A - f_B) / (f_A + f_B + 1) of the per-answer columns
``<feature>_a`` / ``<feature>_b`` (tokens, headers, lists, bold, or any named feature),
z-scored with the population standard deviation over all rows, as
:func:`openarena.ratings.covariates.contextual_data` does in memory. Score of model_a: 1, 0,
or 0.5 for either kind of tie. Row filters are not applied here (select the partitions).

Source: LMSYS "Does style matter?" (2024-08-28); FastChat ``construct_style_matrices``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from openarena.errors import DataError

from openarena.engines.files import parquet_files

STYLE_GROUPS = {"length": ("tokens",), "markdown": ("headers", "lists", "bold"), "style": ("tokens", "headers", "lists", "bold")}


def expand(controls: str | list[str] | tuple[str, ...]) -> list[str]:
    """'style' / 'length' / 'markdown' / feature names (comma-separated or a list) -> features."""
    items = controls.split(",") if isinstance(controls, str) else list(controls)
    out: list[str] = []
    for c in (x.strip() for x in items if x.strip()):
        for f in STYLE_GROUPS.get(c, (c,)):
            if f not in out:
                out.append(f)
    return out


def _stripped_models(raw_names: list[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """The model keys of distinct raw names: (sorted keys stripped of surrounding white space
    as the readers strip them, the index of each raw name's key (int64, len(raw_names)))."""
    keys = [m.strip() for m in raw_names]
    models = tuple(sorted(set(keys)))
    position = {m: k for k, m in enumerate(models)}
    return models, np.array([position[k] for k in keys], dtype=np.int64)


def _refuse_bad_rows(source: str, bad_winners: int, counts: list[str], bad_counts: list[int]) -> None:
    """Raise the DataError of an engine's checking scan: ``bad_winners`` rows with a missing or
    unknown winner label, or ``bad_counts[k]`` rows of style count column ``counts[k]`` missing,
    non-finite or negative (the in-memory path refuses the same rows)."""
    if bad_winners:
        raise DataError(f"{bad_winners} row(s) with a missing or unknown winner label", source, field="winner", expected="model_a, model_b, tie, tie (bothbad)")
    for c, n in zip(counts, bad_counts):
        if n:
            raise DataError(f"{n} row(s) with a missing, non-finite or negative {c}", source, field=c, expected="a count >= 0")


@dataclass
class DuckDBContextualSums:
    """Sufficient statistics of the contextual fit over Parquet files, computed by DuckDB.

    Attributes after construction: models (sorted keys), names (covariates), mean and sd of the
    raw ratios (K,), n_rows. Methods :meth:`loglik` and :meth:`grad_hess` take
    theta (n_models,) and beta (K,) in logits per standard deviation.
    Raises (on construction): DataError for a missing style column, a missing or unknown winner
    label, a missing, non-finite or negative style count (as the in-memory path), or a covariate
    without variance.
    """

    source: str
    controls: str | list[str] = "style"
    threads: int | None = None
    models: tuple[str, ...] = field(init=False)
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        try:
            import duckdb
        except ImportError:  # pragma: no cover
            raise ImportError("style control at scale needs duckdb: pip install 'openarena[engines]'") from None
        self.names = tuple(expand(self.controls))
        if not self.names:
            raise DataError("no covariate to control for", self.source, field="controls", expected="style, length, markdown or feature names")
        files = [f.path for f in parquet_files(self.source)]
        self.con = duckdb.connect(":memory:")
        if self.threads:
            self.con.execute(f"SET threads = {int(self.threads)}")
        cols = {c.lower() for c in self.con.execute("DESCRIBE SELECT * FROM read_parquet($f)", {"f": files}).df()["column_name"]}
        for f in self.names:
            for side in "ab":
                if f"{f}_{side}" not in cols:
                    raise DataError(f"column '{f}_{side}' is missing", self.source, field=f"{f}_{side}", expected=f"per-answer columns {f}_a and {f}_b")
        ratios = ", ".join(f"(CAST({f}_a AS DOUBLE) - {f}_b) / (CAST({f}_a AS DOUBLE) + {f}_b + 1.0) AS r{k}" for k, f in enumerate(self.names))
        score = "CASE CAST(winner AS VARCHAR) WHEN 'model_a' THEN 1.0 WHEN 'model_b' THEN 0.0 ELSE 0.5 END"
        self.con.execute(
            f"CREATE VIEW raw AS SELECT CAST(model_a AS VARCHAR) AS model_a, CAST(model_b AS VARCHAR) AS model_b, "
            f"{score} AS y, {ratios} FROM read_parquet($f)".replace("$f", "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in files) + "]")
        )
        # one scan: winner labels, and the style counts the ratios need (a NULL or NaN row would
        # drop out of every sum unseen; an inf or negative one makes the ratio inf / NaN)
        counts = [f"{f}_{side}" for f in self.names for side in "ab"]
        checks = ", ".join(f"count(*) FILTER (WHERE {c} IS NULL OR NOT (isfinite(CAST({c} AS DOUBLE)) AND CAST({c} AS DOUBLE) >= 0))" for c in counts)
        bad, *bad_counts = self.con.execute(
            "SELECT count(*) FILTER (WHERE CAST(winner AS VARCHAR) NOT IN ('model_a', 'model_b', 'tie', 'tie (bothbad)', 'both_bad') OR winner IS NULL), "
            f"{checks} FROM read_parquet($f)", {"f": files}).fetchall()[0]
        _refuse_bad_rows(self.source, bad, counts, bad_counts)
        names = self.con.execute("SELECT DISTINCT m FROM (SELECT model_a AS m FROM raw UNION SELECT model_b FROM raw) WHERE m IS NOT NULL ORDER BY m").df()["m"]
        raw_names = [str(m) for m in names]
        # keys stripped of surrounding white space as the readers do (str.strip: tabs and
        # Unicode spaces too, which SQL trim keeps), on the few distinct names
        self.models, idx = _stripped_models(raw_names)
        K = len(self.names)
        stats = self.con.execute("SELECT count(*), " + ", ".join(f"avg(r{k}), stddev_pop(r{k})" for k in range(K)) + " FROM raw").fetchall()[0]
        self.n_rows = int(stats[0])
        self.mean = np.array(stats[1::2], dtype=float)
        self.sd = np.array(stats[2::2], dtype=float)
        flat = np.flatnonzero(~(self.sd > 1e-12))
        if flat.size:
            raise DataError(f"covariate {self.names[flat[0]]!r} has no variance", self.source, field=self.names[flat[0]], expected="a covariate that varies across battles")
        self.con.register("model_index", pd.DataFrame({"name": raw_names, "idx": idx}))
        z = ", ".join(f"(r{k} - {float(self.mean[k])!r}) / {float(self.sd[k])!r} AS z{k}" for k in range(K))
        self.con.execute(
            f"CREATE VIEW rows AS SELECT ia.idx AS a, ib.idx AS b, y, {z} FROM raw "
            "JOIN model_index ia ON raw.model_a = ia.name JOIN model_index ib ON raw.model_b = ib.name"
        )

    def _eta(self, beta: np.ndarray) -> str:
        return "ta.t - tb.t + " + " + ".join(f"({float(b)!r}) * z{k}" for k, b in enumerate(beta))

    def _with_theta(self, theta: np.ndarray) -> None:
        self.con.register("theta", pd.DataFrame({"idx": np.arange(len(theta), dtype=np.int64), "t": np.asarray(theta, dtype=float)}))

    def loglik(self, theta: np.ndarray, beta: np.ndarray) -> float:
        """Sum over rows of y log s(eta) + (1 - y) log s(-eta)."""
        self._with_theta(theta)
        sql = (
            f"SELECT sum(y * ls - (1 - y) * e) FROM (SELECT y, e, CASE WHEN e >= 0 THEN -ln(1 + exp(-e)) ELSE e - ln(1 + exp(e)) END AS ls "
            f"FROM (SELECT y, {self._eta(beta)} AS e FROM rows JOIN theta ta ON rows.a = ta.idx JOIN theta tb ON rows.b = tb.idx))"
        )
        return float(self.con.execute(sql).fetchall()[0][0])

    def grad_hess(self, theta: np.ndarray, beta: np.ndarray):
        """Per ordered pair (a, b): sums of residual r = y - p, weight v = p (1 - p), v z_k, r z_k
        and v z_k z_l; returned as a DataFrame (one row per ordered pair present)."""
        self._with_theta(theta)
        K = len(self.names)
        sums = ["sum(y - p) AS r", "sum(p * (1 - p)) AS v"]
        sums += [f"sum(p * (1 - p) * z{k}) AS vz{k}" for k in range(K)]
        sums += [f"sum((y - p) * z{k}) AS rz{k}" for k in range(K)]
        sums += [f"sum(p * (1 - p) * z{k} * z{m}) AS vzz{k}_{m}" for k in range(K) for m in range(k, K)]
        zs = ", ".join(f"z{k}" for k in range(K))
        sql = (
            f"SELECT a, b, {', '.join(sums)} FROM (SELECT a, b, y, {zs}, CASE WHEN e >= 0 THEN 1 / (1 + exp(-e)) ELSE exp(e) / (1 + exp(e)) END AS p FROM "
            f"(SELECT rows.a, rows.b, y, {zs}, {self._eta(beta)} AS e FROM rows JOIN theta ta ON rows.a = ta.idx JOIN theta tb ON rows.b = tb.idx)) "
            "GROUP BY a, b ORDER BY a, b"
        )
        return self.con.execute(sql).df()

    def close(self) -> None:
        self.con.close()


_LABELS = ("model_a", "model_b", "tie", "tie (bothbad)", "both_bad")


@dataclass
class SparkContextualSums:
    """The same sufficient statistics as :class:`DuckDBContextualSums`, computed by Apache Spark
    where the Parquet files live (``master``: a cluster URL, default ``OPENARENA_SPARK_MASTER``
    or ``local[*]``, see :func:`openarena.engines.spark_engine.spark_session`).

    The rows (model indices, score, z-scored covariates) are cached in the cluster's memory
    once; each :meth:`loglik` / :meth:`grad_hess` is one pass over them with theta and beta sent
    as literals, and returns one number or one row per ordered pair to the driver, where
    :func:`openarena.ratings.contextual_sums.fit_contextual_sums` takes the Newton step.
    Attributes: models (sorted keys), names, mean and sd of the raw ratios (K,), n_rows.
    Raises: DataError for a missing style column, a bad winner label or a covariate without
    variance; ImportError when pyspark is missing.
    """

    source: str
    controls: str | list[str] = "style"
    master: str | None = None
    models: tuple[str, ...] = field(init=False)
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        from pyspark.sql import functions as F

        from openarena.engines.spark_engine import spark_session

        self.names = tuple(expand(self.controls))
        if not self.names:
            raise DataError("no covariate to control for", self.source, field="controls", expected="style, length, markdown or feature names")
        files = [f.path for f in parquet_files(self.source)]
        spark = spark_session(self.master)
        df = spark.read.parquet(*files)
        cols = {c.lower(): c for c in df.columns}
        for f in self.names:
            for side in "ab":
                if f"{f}_{side}" not in cols:
                    raise DataError(f"column '{f}_{side}' is missing", self.source, field=f"{f}_{side}", expected=f"per-answer columns {f}_a and {f}_b")
        winner = F.col("winner").cast("string")
        # one pass: winner labels, and the style counts the ratios need (as DuckDBContextualSums)
        counts = [cols[f"{f}_{side}"] for f in self.names for side in "ab"]

        def invalid(c: str):
            v = F.col(c).cast("double")
            return v.isNull() | F.isnan(v) | v.isin(float("inf"), float("-inf")) | (v < 0)

        flags = [F.sum(F.when(winner.isNull() | ~winner.isin(*_LABELS), 1).otherwise(0))]
        flags += [F.sum(F.when(invalid(c), 1).otherwise(0)) for c in counts]
        bad, *bad_counts = (int(v or 0) for v in df.agg(*flags).collect()[0])
        _refuse_bad_rows(self.source, bad, counts, bad_counts)
        score = F.when(winner == "model_a", F.lit(1.0)).when(winner == "model_b", F.lit(0.0)).otherwise(F.lit(0.5))
        ratios = []
        for k, f in enumerate(self.names):
            fa = F.col(cols[f"{f}_a"]).cast("double")
            fb = F.col(cols[f"{f}_b"]).cast("double")
            ratios.append(((fa - fb) / (fa + fb + F.lit(1.0))).alias(f"r{k}"))
        raw = df.select(
            F.col("model_a").cast("string").alias("model_a"),
            F.col("model_b").cast("string").alias("model_b"),
            score.alias("y"),
            *ratios,
        )
        names = raw.select(F.col("model_a").alias("m")).union(raw.select(F.col("model_b").alias("m"))).distinct().collect()
        raw_names = [str(r["m"]) for r in names if r["m"] is not None]
        self.models, idx = _stripped_models(raw_names)  # as DuckDBContextualSums
        K = len(self.names)
        stats = raw.agg(F.count(F.lit(1)), *[x for k in range(K) for x in (F.avg(f"r{k}"), F.stddev_pop(f"r{k}"))]).collect()[0]
        self.n_rows = int(stats[0])
        self.mean = np.array([stats[1 + 2 * k] for k in range(K)], dtype=float)
        self.sd = np.array([stats[2 + 2 * k] for k in range(K)], dtype=float)
        flat = np.flatnonzero(~(self.sd > 1e-12))
        if flat.size:
            raise DataError(f"covariate {self.names[flat[0]]!r} has no variance", self.source, field=self.names[flat[0]], expected="a covariate that varies across battles")
        index = F.create_map(*[x for m, i in zip(raw_names, idx.tolist()) for x in (F.lit(m), F.lit(i))])
        z = [((F.col(f"r{k}") - F.lit(float(self.mean[k]))) / F.lit(float(self.sd[k]))).alias(f"z{k}") for k in range(K)]
        self.rows = raw.select(index[F.col("model_a")].alias("a"), index[F.col("model_b")].alias("b"), "y", *z).cache()
        self.rows.count()  # materialise the cache: every Newton iteration reads it

    def _eta(self, theta: np.ndarray, beta: np.ndarray):
        from pyspark.sql import functions as F

        t = F.array(*[F.lit(float(v)) for v in theta])
        e = F.element_at(t, F.col("a") + 1) - F.element_at(t, F.col("b") + 1)
        for k, b in enumerate(beta):
            e = e + F.lit(float(b)) * F.col(f"z{k}")
        return e

    def loglik(self, theta: np.ndarray, beta: np.ndarray) -> float:
        """Sum over rows of y log s(eta) + (1 - y) log s(-eta)."""
        from pyspark.sql import functions as F

        e = F.col("e")
        ls = F.when(e >= 0, -F.log1p(F.exp(-e))).otherwise(e - F.log1p(F.exp(e)))  # log s(e)
        out = self.rows.select("y", self._eta(theta, beta).alias("e")).agg(F.sum(F.col("y") * ls - (F.lit(1.0) - F.col("y")) * e)).collect()[0][0]
        return float(out)

    def grad_hess(self, theta: np.ndarray, beta: np.ndarray) -> pd.DataFrame:
        """Per ordered pair (a, b): the sums of r = y - p, v = p (1 - p), v z_k, r z_k and
        v z_k z_l (one pandas row per ordered pair present, sorted by a, b)."""
        from pyspark.sql import functions as F

        K = len(self.names)
        e = F.col("e")
        p = F.when(e >= 0, F.lit(1.0) / (F.lit(1.0) + F.exp(-e))).otherwise(F.exp(e) / (F.lit(1.0) + F.exp(e)))
        zs = [f"z{k}" for k in range(K)]
        rows = self.rows.select("a", "b", "y", *zs, self._eta(theta, beta).alias("e")).select("a", "b", "y", *zs, p.alias("p"))
        r = F.col("y") - F.col("p")
        v = F.col("p") * (F.lit(1.0) - F.col("p"))
        sums = [F.sum(r).alias("r"), F.sum(v).alias("v")]
        sums += [F.sum(v * F.col(f"z{k}")).alias(f"vz{k}") for k in range(K)]
        sums += [F.sum(r * F.col(f"z{k}")).alias(f"rz{k}") for k in range(K)]
        sums += [F.sum(v * F.col(f"z{k}") * F.col(f"z{m}")).alias(f"vzz{k}_{m}") for k in range(K) for m in range(k, K)]
        out = rows.groupBy("a", "b").agg(*sums).toPandas()
        out = out.sort_values(["a", "b"], ignore_index=True)
        out["a"] = out["a"].astype("int64")
        out["b"] = out["b"].astype("int64")
        return out

    def close(self) -> None:
        """Drop the cached rows (the Spark session stays: it is shared by the process)."""
        self.rows.unpersist()
