"""Image battles draw only models marked ``vision: true``, with the exact conditional
probability of the pair stored (P(pair) / P(both models take images))."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from openarena.demo import DEMO_REGISTRY
from openarena.providers.registry import load_registry, parse_registry
from openarena.serving.sampling import PairSampler, SamplingConfig, SamplingError


def test_registry_vision_flag():
    reg = parse_registry({"models": [
        {"name": "seer", "base_url": "http://x/v1", "vision": True},
        {"name": "blind", "base_url": "http://x/v1"},
        {"name": "seer-named", "base_url": "http://x/v1", "vision": True, "anonymous": False},
    ]})
    assert reg.vision_names() == ["seer", "seer-named"] and reg.vision_names(anonymous_only=True) == ["seer"]
    assert reg.get("blind").vision is False
    from openarena.errors import DataError

    with pytest.raises(DataError) as e:
        parse_registry({"models": [{"name": "m", "base_url": "http://x/v1", "vision": "maybe"}]})
    assert "vision" in str(e.value) and "true or false" in str(e.value)
    demo = load_registry(DEMO_REGISTRY)
    assert len(demo.vision_names(anonymous_only=True)) >= 2


@pytest.mark.parametrize("policy", ["fastchat", "uniform"])
def test_only_vision_models_are_sampled_with_the_conditional_probability(policy):
    models = [("t1", 1.0, None), ("v1", 2.0, None), ("t2", 1.0, None), ("v2", 1.0, None), ("v3", 0.5, None)]
    vision = ["v1", "v2", "v3"]
    s = PairSampler(models, SamplingConfig(policy=policy), seed=7)
    M = s.pair_matrix()
    idx = {n: i for i, n in enumerate(s.names)}
    within = sum(M[idx[a], idx[b]] for i, a in enumerate(vision) for b in vision[i + 1:])
    draws = [s.sample(only=vision) for _ in range(6000)]
    assert all(d.model_a in vision and d.model_b in vision for d in draws)
    counts = Counter(frozenset((d.model_a, d.model_b)) for d in draws)
    for d in draws[:50]:
        expected = M[idx[d.model_a], idx[d.model_b]] / within
        assert d.prob == pytest.approx(expected)
    # the frequencies match the conditional distribution (3 pairs, 6000 draws: 4 sigma)
    for pair, n in counts.items():
        a, b = tuple(pair)
        p = M[idx[a], idx[b]] / within
        assert abs(n / 6000 - p) < 4 * np.sqrt(p * (1 - p) / 6000)
    assert len(counts) == 3
    # text battles still draw from every model
    assert {m for d in (s.sample() for _ in range(500)) for m in (d.model_a, d.model_b)} == set(s.names)


def test_fewer_than_two_vision_models_is_a_clear_error():
    s = PairSampler([("t1", 1.0, None), ("v1", 1.0, None), ("t2", 1.0, None)])
    with pytest.raises(SamplingError, match="take images"):
        s.sample(only=["v1"])
    s.set_outage(["v2"])
    s2 = PairSampler([("v1", 1.0, None), ("v2", 1.0, None), ("t", 1.0, None)], SamplingConfig(outage={"v2"}))
    with pytest.raises(SamplingError, match="take images"):
        s2.sample(only=["v1", "v2"])
