"""aggregate's fast path (unweighted rows, few models: one bincount over ordered cells, then
folded) gives exactly the counts of the general path, whichever side a model is listed on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from openarena.data.battles import BattleTable, aggregate


def test_ordered_fold_equals_the_general_path():
    rng = np.random.default_rng(4)
    names = np.array([f"m{k}" for k in range(7)], dtype=object)
    a = rng.integers(0, 7, 5000)
    b = (a + rng.integers(1, 7, 5000)) % 7
    b[:40] = np.where(a[:40] == 6, 5, 6)  # a pair seen only one way round
    winner = rng.choice(["model_a", "model_b", "tie", "tie (bothbad)"], 5000)
    table = BattleTable(pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": winner}))
    fast = aggregate(table)
    general = aggregate(table, weights=np.ones(len(table)))
    assert fast.models == general.models
    np.testing.assert_array_equal(fast.pairs, general.pairs)
    np.testing.assert_array_equal(fast.counts, general.counts)
    # a win of model_a listed second counts for the first model of the pair
    one = aggregate(BattleTable(pd.DataFrame({"model_a": ["z", "a"], "model_b": ["a", "z"], "winner": ["model_a", "tie"]})))
    np.testing.assert_array_equal(one.counts, [[0, 1, 1, 0]])
