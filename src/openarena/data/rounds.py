"""Red-team rounds: a player tries to make a model fail a target; the player wins or loses.

Two forms, as for battles: rows (:class:`RoundTable`, one per round) and aggregated cells
(:class:`RoundCounts`, one per distinct (player, model, target) with its wins and losses), which
is what the extended Bradley-Terry fitter sees.

File format (CSV or Parquet): columns ``player, model, target, outcome`` with outcome ``win`` or
``loss`` for the player (also accepted: 1/0, true/false), optional ``tstamp`` (Unix seconds or an
ISO date) and any other columns, which are kept.

Source: the round records of RedTeam Arena's "Bad Words" game (LMArena, 2024-09), one row per
game with the player, the model, the target phrase and whether the player won.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from openarena.errors import DataError

REQUIRED = ("player", "model", "target", "outcome")
_WIN = {"win", "won", "1", "true", "player"}
_LOSS = {"loss", "lose", "lost", "0", "false", "model"}


@dataclass(frozen=True)
class RoundTable:
    """One row per red-team round.

    Attributes: frame, DataFrame with columns player, model, target (str), won (bool: the
    player made the model fail the target) and, when known, tstamp (float Unix seconds); source,
    the file it came from ('' in memory).
    """

    frame: pd.DataFrame
    source: str = ""

    def __len__(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class RoundCounts:
    """Rounds aggregated per distinct (player, model, target).

    Attributes:
        players, models, targets: sorted tuples of names.
        cells: int64 array (n_cells, 3): indices into players, models, targets.
        wins, losses: float64 arrays (n_cells,): rounds the player won / lost in that cell.
        source: provenance.
    """

    players: tuple[str, ...]
    models: tuple[str, ...]
    targets: tuple[str, ...]
    cells: np.ndarray
    wins: np.ndarray
    losses: np.ndarray
    source: str = ""

    @property
    def total(self) -> float:
        """Number of rounds."""
        return float(self.wins.sum() + self.losses.sum())

    def rounds_per(self, kind: str) -> np.ndarray:
        """Rounds per player, model or target (kind 'player' | 'model' | 'target'), shape
        (n_players,) etc."""
        col = {"player": 0, "model": 1, "target": 2}[kind]
        size = len((self.players, self.models, self.targets)[col])
        return np.bincount(self.cells[:, col], weights=self.wins + self.losses, minlength=size)


def _outcome(values: pd.Series, source: str) -> np.ndarray:
    text = values.astype(str).str.strip().str.lower()
    won = text.isin(_WIN)
    lost = text.isin(_LOSS)
    bad = ~(won | lost)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"unknown outcome {values.iloc[row]!r}", source, row=row, field="outcome", expected="'win' or 'loss' (for the player)")
    return won.to_numpy()


def _tstamp(values: pd.Series, source: str) -> np.ndarray:
    num = pd.to_numeric(values, errors="coerce")
    if num.notna().all():
        return num.to_numpy(dtype=float)
    parsed = pd.to_datetime(values, errors="coerce", utc=True)
    bad = parsed.isna() & values.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"cannot read time {values.iloc[row]!r}", source, row=row, field="tstamp", expected="Unix seconds or an ISO date")
    return (parsed.astype("int64") / 1e9).to_numpy(dtype=float)


def rounds_from_frame(frame: pd.DataFrame, source: str = "") -> RoundTable:
    """Validate a DataFrame of rounds and return a :class:`RoundTable`.

    Parameters: frame with columns player, model, target, outcome ('win'/'loss' for the player,
    or 1/0, true/false), optional tstamp; source, named in errors.
    Raises: DataError naming the row and field of the first bad value (missing column, empty
    name, unknown outcome, unreadable time), rows counted from 1.
    """
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)}", source, expected="columns player, model, target, outcome")
    if len(frame) == 0:
        raise DataError("no rounds", source, expected="at least one row")
    out = frame.reset_index(drop=True).copy()
    for col in ("player", "model", "target"):
        values = out[col]
        blank = values.isna() | (values.astype(str).str.strip() == "")
        if blank.any():
            row = int(np.flatnonzero(blank.to_numpy())[0])
            raise DataError("empty name", source, row=row, field=col, expected=f"a {col} name")
        out[col] = values.astype(str).str.strip()
    out["won"] = _outcome(out["outcome"], source)
    out = out.drop(columns=["outcome"])
    if "tstamp" in out.columns:
        out["tstamp"] = _tstamp(out["tstamp"], source)
    return RoundTable(out, source)


def read_rounds(path: str | Path) -> RoundTable:
    """Read a rounds file (.csv or .parquet) into a :class:`RoundTable`.

    Raises: DataError for a missing file, an unknown suffix, an unreadable file or bad rows (see
    :func:`rounds_from_frame`).
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise DataError("no such file", source, expected="a CSV or Parquet file of rounds")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype={"player": str, "model": str, "target": str, "outcome": str})
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            raise DataError(f"unknown file type {suffix!r}", source, expected="a .csv or .parquet file")
    except (UnicodeDecodeError, ValueError, OSError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"cannot read the file ({err.__class__.__name__}: {str(err).splitlines()[0] if str(err) else ''})", source, expected="a CSV or Parquet file of rounds") from None
    return rounds_from_frame(frame, source)


def aggregate_rounds(rounds: RoundTable) -> RoundCounts:
    """Aggregate rounds per distinct (player, model, target) cell.

    Returns: RoundCounts with n_cells <= len(rounds); names sorted.
    """
    f = rounds.frame
    p_codes, players = pd.factorize(f["player"], sort=True)
    m_codes, models = pd.factorize(f["model"], sort=True)
    t_codes, targets = pd.factorize(f["target"], sort=True)
    key = (p_codes.astype(np.int64) * len(models) + m_codes) * len(targets) + t_codes
    uniq, inv = np.unique(key, return_inverse=True)
    won = f["won"].to_numpy(dtype=bool)
    wins = np.bincount(inv, weights=won.astype(float), minlength=len(uniq))
    total = np.bincount(inv, minlength=len(uniq)).astype(float)
    t = uniq % len(targets)
    m = (uniq // len(targets)) % len(models)
    p = uniq // (len(targets) * len(models))
    return RoundCounts(
        players=tuple(map(str, players)), models=tuple(map(str, models)), targets=tuple(map(str, targets)),
        cells=np.column_stack([p, m, t]).astype(np.int64), wins=wins, losses=total - wins, source=rounds.source,
    )
