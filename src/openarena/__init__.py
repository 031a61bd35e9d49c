"""OpenArena: a self-hostable Chatbot Arena.

The public API (three lines from a pandas DataFrame with model_a, model_b, winner to a leaderboard)::

    import openarena
    board = openarena.leaderboard(frame)          # or openarena.load("battles.parquet", anony=True)
    board.to_frame()                              # rank_ub, model, rating, rating_q025, rating_q975, ...

:func:`load`, :func:`leaderboard`, :func:`category_leaderboards` and :func:`prepare` live in
:mod:`openarena.api`, the one pipeline every entry point (CLI, web leaderboard, judge reports)
uses. Attributes load on first use, so ``import openarena`` costs no pandas, matplotlib or web
stack.

Layers (lower never imports upper): data <- ratings <- analysis <- api <- (storage, serving,
judging, cli). The one data flow: sources -> BattleTable -> PairCounts -> fit -> Leaderboard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> module that defines it (imported on first access)
_LAZY = {
    "load": "openarena.api",
    "leaderboard": "openarena.api",
    "category_leaderboards": "openarena.api",
    "prepare": "openarena.api",
    "read": "openarena.api",
    "redteam_leaderboard": "openarena.api",
    "with_robustness": "openarena.api",
    "trust_report": "openarena.api",
    "Leaderboard": "openarena.analysis.leaderboard",
    "BattleTable": "openarena.data.battles",
    "PairCounts": "openarena.data.battles",
    "FilterStep": "openarena.data.battles",
    "OpenArenaError": "openarena.errors",
    "DataError": "openarena.errors",
    "ConvergenceError": "openarena.errors",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from openarena.analysis.leaderboard import Leaderboard
    from openarena.api import category_leaderboards, leaderboard, load, prepare, read, redteam_leaderboard, trust_report, with_robustness
    from openarena.data.battles import BattleTable, FilterStep, PairCounts
    from openarena.errors import ConvergenceError, DataError, OpenArenaError


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'openarena' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
