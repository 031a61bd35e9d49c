"""The two forms of battle data every layer accepts: rows (:class:`BattleTable`) and aggregated
pair counts (:class:`PairCounts`), with the conversion between them.

Both carry ``source`` (where the data came from) and ``steps`` (what each filter removed), so a
leaderboard can state its provenance.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Iterable

import numpy as np

from openarena.data.schema import CHUNK_ROWS, WINNERS, category_luts, factorize_models, is_frame, validate_battles, winner_codes
from openarena.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class FilterStep:
    """What one filter did: ``name`` (e.g. 'anony'), battles ``removed`` and ``remaining``, and a
    human-readable ``detail`` (e.g. which models were excluded)."""

    name: str
    removed: float
    remaining: float
    detail: str = ""


@dataclass
class BattleTable:
    """One row per vote, in the canonical schema of :mod:`openarena.data.schema`.

    Attributes: frame, DataFrame of n rows with at least model_a, model_b, winner; its index
    holds the row numbers in the source. source, file or dataset name. steps, the filters
    applied so far.
    Raises (on construction): DataError if the frame breaks the schema.
    """

    frame: pd.DataFrame
    source: str = ""
    steps: list[FilterStep] = field(default_factory=list)
    validate: bool = field(default=True, repr=False)

    def __post_init__(self) -> None:
        if self.validate:
            validate_battles(self.frame, self.source)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def models(self) -> list[str]:
        """Sorted list of the model keys that appear in the table."""
        return [str(m) for m in factorize_models(self.frame)[1]]

    def with_frame(self, frame: pd.DataFrame, step: FilterStep | None = None) -> "BattleTable":
        """A new table with ``frame`` (already valid rows of this table) and one more step."""
        steps = self.steps + ([step] if step else [])
        return BattleTable(frame, self.source, steps, validate=False)


@dataclass(frozen=True)
class PairCounts:
    """Battle outcomes aggregated per unordered model pair.

    Attributes:
        models: tuple of n_models model keys, sorted.
        pairs: int64 array of shape (n_pairs, 2) with ``pairs[:, 0] < pairs[:, 1]``, indices into
            ``models``; each unordered pair appears once.
        counts: float64 array of shape (n_pairs, 4): votes for (first model wins, second model
            wins, tie, tie (bothbad)). Floats so that weighted votes fit too.
        source, steps: provenance, as in :class:`BattleTable`.

    The cost of every fit on a PairCounts depends on n_pairs, not on the number of votes.
    Source: the (X, Y) layout of leaderbot's chatbotarena_20240814.json and the unique-pair
    aggregation of arena-rank's PairDataset.
    """

    models: tuple[str, ...]
    pairs: np.ndarray
    counts: np.ndarray
    source: str = ""
    steps: tuple[FilterStep, ...] = ()

    def __post_init__(self) -> None:
        pairs = np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2)
        counts = np.asarray(self.counts, dtype=np.float64).reshape(-1, 4)
        if len(pairs) != len(counts):
            raise DataError(f"{len(pairs)} pairs but {len(counts)} count rows", self.source, field="Y")
        object.__setattr__(self, "pairs", pairs)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "steps", tuple(self.steps))

    @property
    def n_models(self) -> int:
        return len(self.models)

    @property
    def total(self) -> float:
        """Total number of votes."""
        return float(self.counts.sum())

    def num_battles(self) -> np.ndarray:
        """Votes per model, float64 array of shape (n_models,)."""
        per_pair = self.counts.sum(axis=1)
        return np.bincount(self.pairs[:, 0], per_pair, self.n_models) + np.bincount(
            self.pairs[:, 1], per_pair, self.n_models
        )

    def index(self, model: str) -> int:
        """Position of ``model`` in :attr:`models`. Raises DataError if it is absent."""
        try:
            return self.models.index(model)
        except ValueError:
            raise DataError(f"model {model!r} is not in the data", self.source, expected="a model key present in the battles") from None

    def with_step(self, step: FilterStep) -> "PairCounts":
        return replace(self, steps=self.steps + (step,))

    def to_battles(self, seed: int | None = 0) -> BattleTable:
        """Expand to one row per vote (counts must be whole numbers).

        Parameters: seed, rows are shuffled with this seed (None keeps pair order), since the
        aggregate has lost the time order that online Elo needs.
        Returns: BattleTable with model_a, model_b, winner (n = total votes rows).
        Raises: DataError if a count is not a whole number.
        """
        c = self.counts
        if not np.all(np.equal(np.round(c), c)):
            raise DataError("weighted counts cannot be expanded to rows", self.source, field="counts", expected="whole-number counts")
        reps = c.astype(np.int64).ravel()
        pair_idx = np.repeat(np.arange(len(self.pairs)), 4)
        outcome = np.tile(np.arange(4), len(self.pairs))
        row_pair = np.repeat(pair_idx, reps)
        row_outcome = np.repeat(outcome, reps)
        if seed is not None:
            perm = np.random.default_rng(seed).permutation(len(row_pair))
            row_pair, row_outcome = row_pair[perm], row_outcome[perm]
        import pandas as pd

        models = pd.Categorical.from_codes(np.arange(self.n_models), categories=list(self.models))
        a = models.take(self.pairs[row_pair, 0])
        b = models.take(self.pairs[row_pair, 1])
        winner = pd.Categorical.from_codes(row_outcome, categories=list(WINNERS))
        frame = pd.DataFrame({"model_a": a, "model_b": b, "winner": winner})
        return BattleTable(frame, self.source, list(self.steps), validate=False)


#: Largest n_models^2 for which :func:`aggregate` counts pairs in a dense table (1024 models).
_DENSE_PAIR_LIMIT = 1 << 20
#: Largest n_models^2 for which :func:`aggregate` finds the pairs present with one lookup table
#: of n_models^2 cells instead of sorting the rows (2,896 models: a 64 MiB table).
_LOOKUP_PAIR_LIMIT = 1 << 23


def aggregate(battles: BattleTable | pd.DataFrame | PairCounts, weights: np.ndarray | None = None) -> PairCounts:
    """Aggregate battle rows into :class:`PairCounts` (a PairCounts is returned unchanged).

    Parameters: battles, n rows with model_a, model_b, winner; weights, optional float array of
    shape (n,) (e.g. inverse sampling probabilities), default 1 per vote.
    Returns: PairCounts with models sorted and each unordered pair once; a battle listed as
    (b, a) adds its model_a win to the second model's column.
    Raises: DataError if the rows break the schema.
    """
    if isinstance(battles, PairCounts):
        return battles
    if is_frame(battles):
        battles = BattleTable(battles)
    frame = battles.frame
    import pandas as pd  # a BattleTable holds a DataFrame: pandas is loaded already

    if weights is None and all(isinstance(frame[c].dtype, pd.CategoricalDtype) for c in ("model_a", "model_b", "winner")):
        counts = _aggregate_categorical(battles)
        if counts is not None:
            return counts
    codes, models = factorize_models(frame)
    a, b = codes
    w = winner_codes(frame["winner"], battles.source)
    return count_pairs(a, b, w, tuple(str(m) for m in models), battles.source, tuple(battles.steps), weights)


def count_pairs(a: np.ndarray, b: np.ndarray, w: np.ndarray, models: tuple[str, ...], source: str = "", steps: tuple[FilterStep, ...] = (),
                weights: np.ndarray | None = None) -> PairCounts:
    """The counting of :func:`aggregate`, on integer codes.

    Parameters: a, b, int64 arrays of shape (n,): positions of model_a and model_b in
    ``models`` (sorted, unique); w, integer array of shape (n,): the winner as a position in
    :data:`~openarena.data.schema.WINNERS`; source, steps: the provenance to carry; weights,
    optional float array of shape (n,).
    Returns: PairCounts with each unordered pair once (a battle listed as (b, a) adds its
    model_a win to the second model's column).
    """
    n_models = len(models)
    if weights is None and 0 < len(a) and n_models * n_models <= _DENSE_PAIR_LIMIT and a.min() >= 0 and b.min() >= 0:
        return _aggregate_ordered(a, b, w, models, source, steps)
    w = np.asarray(w).astype(np.int64)
    swap = a > b
    lo = np.where(swap, b, a)
    hi = np.where(swap, a, b)
    # a model_a win of a swapped row is a win of the second (hi) model, and vice versa
    w = np.where(swap & (w < 2), 1 - w, w)
    key = lo * n_models + hi
    cells = n_models * n_models
    if 0 < len(key) and cells <= _DENSE_PAIR_LIMIT and lo.min() >= 0:
        # dense pair table: bincount over all n_models^2 keys, then keep the keys that occur
        # (same result and summation order as np.unique + bincount, without the 1.7M sort)
        uniq = np.flatnonzero(np.bincount(key, minlength=cells))
        flat = np.bincount(key * 4 + w, weights=weights, minlength=cells * 4).reshape(cells, 4)[uniq].ravel()
    elif 0 < len(key) and cells <= _LOOKUP_PAIR_LIMIT and lo.min() >= 0:
        # many models: mark the keys that occur in one n_models^2 table, number them in order
        # and look each row's pair up (np.unique's result without sorting the rows: 5M votes
        # x 2,000 models, 20x faster)
        present = np.bincount(key, minlength=cells) > 0
        uniq = np.flatnonzero(present)
        inv = (np.cumsum(present) - 1)[key]
        del present
        flat = np.bincount(inv * 4 + w, weights=weights, minlength=len(uniq) * 4)
    else:
        uniq, inv = np.unique(key, return_inverse=True)
        flat = np.bincount(inv * 4 + w, weights=weights, minlength=len(uniq) * 4)
    pairs = np.column_stack([uniq // n_models, uniq % n_models])
    return PairCounts(models, pairs, flat.reshape(-1, 4), source, steps)


def _aggregate_ordered(a: np.ndarray, b: np.ndarray, w: np.ndarray, models: tuple[str, ...], source: str, steps: tuple[FilterStep, ...]) -> PairCounts:
    """:func:`count_pairs` of unweighted rows with few models: one bincount over the ordered
    (model_a, model_b, winner) cells, then the n x n x 4 table is folded onto unordered pairs
    (a battle listed as (b, a) swaps its two win columns). Five passes over the rows instead of
    a dozen; integer counts, so the result is the same to the last bit (50M votes: 2x faster)."""
    n = len(models)
    key = a * n
    key += b
    key *= 4
    key += w
    table = np.bincount(key, minlength=n * n * 4).reshape(n, n, 4)
    del key
    lo, hi = np.triu_indices(n, 1)
    both = table[lo, hi] + table[hi, lo][:, [1, 0, 2, 3]]
    keep = both.sum(axis=1) > 0
    pairs = np.column_stack([lo[keep], hi[keep]])
    return PairCounts(models, pairs, both[keep].astype(np.float64), source, steps)


def _aggregate_categorical(battles: BattleTable) -> PairCounts | None:
    """:func:`aggregate` of unweighted rows whose model_a, model_b and winner are categorical
    (Parquet dictionary columns, a pandas category): the rows are counted per cell of
    (model_a category, model_b category, winner category) straight from their small integer
    codes, in chunks (no row-length int64 arrays), and only that table (a few hundred thousand
    cells) is mapped to model indices and winner codes and folded onto unordered pairs.
    Integer counts: the same result as :func:`_aggregate_ordered` to the last bit.
    Returns None (the caller takes the general path, which reports the problem) for a missing
    model name or winner, or an unknown winner label."""
    frame = battles.frame
    a, b, w = (frame[c].array for c in ("model_a", "model_b", "winner"))
    ca, cb, cw = (np.asarray(x.codes) for x in (a, b, w))
    if not len(ca) or min(ca.min(), cb.min(), cw.min()) < 0:
        return None
    win = np.array([WINNERS.index(c) if c in WINNERS else -1 for c in w.categories], dtype=np.int64)
    na, nb, nw = len(a.categories), len(b.categories), len(w.categories)
    cells = na * nb * nw
    if cells > _DENSE_PAIR_LIMIT * 4:
        return None

    def count(s0: int) -> np.ndarray:
        # the cell of each row of one chunk, then its count per cell (integers: the chunks add
        # up to the same table in any order)
        k = np.multiply(ca[s0 : s0 + CHUNK_ROWS], nb * nw, dtype=np.int64)
        k += cb[s0 : s0 + CHUNK_ROWS] * np.int64(nw)
        k += cw[s0 : s0 + CHUNK_ROWS]
        return np.bincount(k, minlength=cells)

    # on worker threads: one chunk's cells are computed (numpy releases the GIL) while another's
    # are counted (np.bincount holds it)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        parts = list(pool.map(count, range(0, len(ca), CHUNK_ROWS)))
    table = np.sum(parts, axis=0).reshape(na, nb, nw)
    if table[:, :, win < 0].any():
        return None
    luts, models = category_luts(a, b, (table.sum(axis=(1, 2)) > 0, table.sum(axis=(0, 2)) > 0))
    n = len(models)
    if n * n > _DENSE_PAIR_LIMIT:
        return None
    ia, ib, iw = np.nonzero(table)  # only used categories have rows, so their luts are >= 0
    full = np.zeros((n, n, 4), dtype=np.int64)
    np.add.at(full, (luts[0][ia], luts[1][ib], win[iw]), table[ia, ib, iw])
    lo, hi = np.triu_indices(n, 1)
    both = full[lo, hi] + full[hi, lo][:, [1, 0, 2, 3]]
    keep = both.sum(axis=1) > 0
    pairs = np.column_stack([lo[keep], hi[keep]])
    return PairCounts(tuple(str(m) for m in models), pairs, both[keep].astype(np.float64), battles.source, tuple(battles.steps))


def from_matrix_counts(models: Iterable[str], X: np.ndarray, Y: np.ndarray, source: str = "") -> PairCounts:
    """Build PairCounts from index pairs X (n, 2) and counts Y (n, 4) in any orientation.

    Pairs listed as (j, i) with j > i are flipped (their first two counts swapped); repeated
    pairs are summed; pairs whose four counts are zero are dropped (leaderbot's convention).
    Raises: DataError for an index out of range, a pair of a model with itself, or a negative
    or non-finite count, naming the offending row.
    """
    models = list(models)
    X = np.asarray(X)
    Y = np.asarray(Y, dtype=np.float64)
    n = len(models)
    if X.ndim != 2 or X.shape[1] != 2:
        raise DataError(f"pairs have shape {X.shape}", source, field="X", expected="a list of [i, j] pairs")
    if Y.ndim != 2 or Y.shape[1] != 4 or len(Y) != len(X):
        raise DataError(f"counts have shape {Y.shape} for {len(X)} pairs", source, field="Y", expected=f"shape ({len(X)}, 4)")
    bad = np.flatnonzero((X < 0).any(axis=1) | (X >= n).any(axis=1))
    if bad.size:
        raise DataError(f"model index {X[bad[0]].tolist()} out of range", source, row=int(bad[0]), field="X", expected=f"indices in 0..{n - 1}")
    bad = np.flatnonzero(X[:, 0] == X[:, 1])
    if bad.size:
        raise DataError(f"model {models[X[bad[0], 0]]!r} battles itself", source, row=int(bad[0]), field="X", expected="two different models")
    bad = np.flatnonzero(~np.isfinite(Y).all(axis=1) | (Y < 0).any(axis=1))
    if bad.size:
        raise DataError(f"counts {Y[bad[0]].tolist()} are negative or not finite", source, row=int(bad[0]), field="Y", expected="non-negative counts")
    order = np.argsort(models, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    i, j = rank[X[:, 0]], rank[X[:, 1]]
    swap = i > j
    Y = Y.copy()
    Y[swap, 0], Y[swap, 1] = Y[swap, 1], Y[swap, 0].copy()
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    key = lo * n + hi
    uniq, inv = np.unique(key, return_inverse=True)
    summed = np.zeros((len(uniq), 4))
    np.add.at(summed, inv, Y)
    keep = summed.sum(axis=1) > 0
    pairs = np.column_stack([uniq // n, uniq % n])[keep]
    return PairCounts(tuple(models[k] for k in order), pairs, summed[keep], source)


def as_pair_counts(data: BattleTable | PairCounts | pd.DataFrame) -> PairCounts:
    """Either form (or a raw DataFrame of rows) as PairCounts; see :func:`aggregate`."""
    return aggregate(data)
