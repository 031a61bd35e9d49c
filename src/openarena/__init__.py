"""OpenArena: a self-hostable Chatbot Arena.

Layers (lower never imports upper): data <- ratings <- analysis <- (storage, serving, judging,
routing, cli). The one data flow: sources -> BattleTable -> PairCounts -> fit -> Leaderboard.
"""

__version__ = "0.1.0"
