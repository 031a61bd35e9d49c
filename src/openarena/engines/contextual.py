"""Style control where the votes live: the contextual Bradley-Terry fit's log-likelihood,
gradient and Hessian are sums over rows, so DuckDB computes them over the Parquet files and
only O(n_models^2 * K^2) numbers come back per Newton iteration; the Newton step itself is
taken locally (:func:`openarena.ratings.contextual_sums.fit_contextual_sums`).

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


@dataclass
class DuckDBContextualSums:
    """Sufficient statistics of the contextual fit over Parquet files, computed by DuckDB.

    Attributes after construction: models (sorted keys), names (covariates), mean and sd of the
    raw ratios (K,), n_rows. Methods :meth:`loglik` and :meth:`grad_hess` take
    theta (n_models,) and beta (K,) in logits per standard deviation.
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
            f"CREATE VIEW raw AS SELECT trim(CAST(model_a AS VARCHAR)) AS model_a, trim(CAST(model_b AS VARCHAR)) AS model_b, "
            f"{score} AS y, {ratios} FROM read_parquet($f)".replace("$f", "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in files) + "]")
        )
        bad = self.con.execute("SELECT count(*) FROM read_parquet($f) WHERE CAST(winner AS VARCHAR) NOT IN ('model_a', 'model_b', 'tie', 'tie (bothbad)', 'both_bad') OR winner IS NULL", {"f": files}).fetchall()[0][0]
        if bad:
            raise DataError(f"{bad} row(s) with a missing or unknown winner label", self.source, field="winner", expected="model_a, model_b, tie, tie (bothbad)")
        names = self.con.execute("SELECT DISTINCT m FROM (SELECT model_a AS m FROM raw UNION SELECT model_b FROM raw) ORDER BY m").df()["m"]
        self.models = tuple(str(m) for m in names)
        K = len(self.names)
        stats = self.con.execute("SELECT count(*), " + ", ".join(f"avg(r{k}), stddev_pop(r{k})" for k in range(K)) + " FROM raw").fetchall()[0]
        self.n_rows = int(stats[0])
        self.mean = np.array(stats[1::2], dtype=float)
        self.sd = np.array(stats[2::2], dtype=float)
        flat = np.flatnonzero(~(self.sd > 1e-12))
        if flat.size:
            raise DataError(f"covariate {self.names[flat[0]]!r} has no variance", self.source, field=self.names[flat[0]], expected="a covariate that varies across battles")
        self.con.register("model_index", pd.DataFrame({"name": list(self.models), "idx": np.arange(len(self.models), dtype=np.int64)}))
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
