"""Pair sampling (exact pair probabilities, FastChat rules, active policy), sanitising,
identity words, rate limiter, CSRF helpers and moderation."""

from __future__ import annotations

import asyncio
import collections

import httpx
import numpy as np
import pytest

from openarena.demo.mock_server import XSS_PAYLOAD
from openarena.serving.shared_state import LocalState
from openarena.serving.safety import Moderator, RateLimiter, check_origin, csrf_token, identity_leak, identity_words, render_markdown, verify_csrf
from openarena.serving.sampling import PairSampler, SamplingConfig, SamplingError


def sampler(policy="fastchat", **kw):
    models = [("a", 1.0, None), ("b", 1.0, None), ("c", 2.0, None), ("d", 1.0, 100)]
    return PairSampler(models, SamplingConfig(policy=policy, **kw), seed=1)


def test_fastchat_pair_probabilities_follow_the_two_stage_rule():
    s = sampler()
    s.update(votes={"d": 10})  # below its target of 100: boosted x5 as first draw
    P = s.pair_matrix()
    assert np.allclose(P, P.T) and np.allclose(np.diag(P), 0) and np.isclose(np.triu(P, 1).sum(), 1)
    w1 = np.array([1, 1, 2, 5.0]) / 9
    w2 = np.array([1, 1, 2, 1.0])
    exact = np.zeros((4, 4))
    for i in range(4):
        r = w2.copy()
        r[i] = 0
        exact[i] = w1[i] * r / r.sum()
    exact = exact + exact.T
    assert np.allclose(P, exact)
    s.update(votes={"d": 100})
    assert s.probability("a", "d") < P[0, 3]


def test_sampled_frequencies_match_the_stored_probability():
    s = sampler()
    n = 20000
    seen = collections.Counter()
    probs = {}
    left = collections.Counter()
    for _ in range(n):
        p = s.sample()
        key = frozenset((p.model_a, p.model_b))
        seen[key] += 1
        probs[key] = p.prob
        left[p.model_a] += 1
    for key, k in seen.items():
        assert abs(k / n - probs[key]) < 4 * np.sqrt(probs[key] * (1 - probs[key]) / n) + 1e-3
    # random left/right order: each model is on the left about half of its battles
    per_model = collections.Counter(m for key, k in seen.items() for m in key for _ in range(k))
    for m in "abcd":
        assert abs(left[m] / per_model[m] - 0.5) < 0.03


def test_outage_anon_only_and_targets():
    s = sampler(outage={"c"})
    P = s.pair_matrix()
    assert P[2].sum() == 0 and P[:, 2].sum() == 0
    s = sampler(anon_only={"a", "b"})
    assert s.probability("a", "b") == 0 and s.probability("a", "c") > 0
    s = sampler(battle_targets={"a": ["d"]})
    base = sampler()
    assert s.probability("a", "d") > base.probability("a", "d")
    with pytest.raises(SamplingError):
        PairSampler([("a", 1.0, None)], SamplingConfig()).sample()
    with pytest.raises(Exception):
        SamplingConfig(policy="nope")


def test_uniform_and_active_policies():
    u = sampler("uniform").pair_matrix()
    assert np.allclose(u[np.triu_indices(4, 1)], 1 / 6)
    s = sampler("active", explore=0.0)
    s.update(pair_votes={frozenset(("a", "b")): 500, frozenset(("c", "d")): 0}, ratings={"a": 1000, "b": 1000, "c": 1000, "d": 1000})
    assert s.probability("c", "d") > 10 * s.probability("a", "b")
    # far-apart ratings mean a small outcome variance, hence less to learn from that pair
    s.update(pair_votes={}, ratings={"a": 1400, "b": 1000, "c": 1000, "d": 1000})
    assert s.probability("a", "b") < s.probability("b", "c")
    mixed = sampler("active", explore=0.2)
    assert (mixed.pair_matrix()[np.triu_indices(4, 1)] > 0).all()


def test_render_markdown_neutralises_the_xss_payload():
    from html.parser import HTMLParser

    class Collect(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.attrs = set(), []

        def handle_starttag(self, tag, attrs):
            self.tags.add(tag)
            self.attrs += attrs

    html = render_markdown(XSS_PAYLOAD)
    p = Collect()
    p.feed(html)
    assert p.tags <= {"p", "br", "b", "strong", "a", "em", "code", "pre"}
    assert not {"script", "img", "iframe", "svg"} & p.tags
    assert not [a for a in p.attrs if a[0].startswith("on") or "javascript" in (a[1] or "").lower()]
    assert "&lt;script&gt;" in html
    html = render_markdown("**b** [x](https://e.org) [y](javascript:alert(1)) `c`\n\n| a |\n|---|\n| 1 |")
    assert '<a href="https://e.org" rel="noopener noreferrer nofollow">x</a>' in html and "<table>" in html
    assert "javascript:" not in html.split("[y]")[0]


def test_identity_words_and_leaks():
    class M:
        def __init__(self, name, model_id=None, organization=None):
            self.name, self.model_id, self.organization = name, model_id, organization

    words = identity_words([M("llama-3.1-8b-instruct", "meta-llama/x", "Meta"), M("qw")])
    assert "llama" in words and "meta" in words and "qw" not in words
    conv = lambda t: [{"role": "user", "content": "hi"}, {"role": "assistant", "content": t}]  # noqa: E731
    assert identity_leak(conv("I am Claude"), conv("hello")) == "claude"
    assert identity_leak(conv("metadata is fine"), conv("ok"), ["meta"]) is None
    assert identity_leak(conv("Built by Meta."), conv("ok"), ["meta"]) == "meta"


def test_rate_limiter_and_csrf_helpers():
    r = LocalState()
    p = [("p:k", 2, 60.0)]
    assert r.hit_now(p, now=0) == 0 and r.hit_now(p, now=0) == 0
    assert r.hit_now(p, now=0) == pytest.approx(30.0)
    assert r.hit_now(p, now=31) == 0 and r.hit_now([("other:k", 0, 60.0)], now=0) == 0
    # all or nothing: a request refused by one bucket takes no token from the other
    assert r.hit_now([("a", 1, 60.0), ("b", 5, 60.0)], now=100) == 0
    assert r.hit_now([("a", 1, 60.0), ("b", 5, 60.0)], now=100) == pytest.approx(60.0)
    assert [r.hit_now([("b", 5, 60.0)], now=100) for _ in range(4)] == [0, 0, 0, 0]  # b kept 4 of its 5 tokens
    assert r.hit_now([("b", 5, 60.0)], now=100) == pytest.approx(12.0)
    limiter = RateLimiter({"vote_ip": 1}, r)
    assert asyncio.run(limiter.take([("vote_ip", "1.2.3.4")])) == 0 and asyncio.run(limiter.take([("vote_ip", "1.2.3.4")])) > 0
    tok = csrf_token(b"s", "sid")
    assert verify_csrf(b"s", "sid", tok) and not verify_csrf(b"s", "sid2", tok) and not verify_csrf(b"s", "sid", None)
    assert check_origin(None, "h:1") and check_origin("http://h:1", "h:1") and not check_origin("http://x:1", "h:1") and not check_origin("null", "h")


def test_moderator():
    def handler(request: httpx.Request) -> httpx.Response:
        flagged = b"bad" in request.content
        return httpx.Response(200, json={"results": [{"flagged": flagged, "categories": {"violence": flagged}}]})

    m = Moderator("http://mod.invalid/v1", transport=httpx.MockTransport(handler))
    assert asyncio.run(m.flagged("a bad prompt")) == (True, "violence")
    assert asyncio.run(m.flagged("fine"))[0] is False
    down = Moderator("http://mod.invalid/v1", transport=httpx.MockTransport(lambda r: httpx.Response(500)), fail_open=False)
    assert asyncio.run(down.flagged("x"))[0] is True


def test_identity_leak_agrees_with_the_curation_rule():
    import random

    import pandas as pd

    from openarena.data.battles import BattleTable
    from openarena.data.curation import identity_leak as curation_leak

    rng = random.Random(0)
    vocab = ["hello", "I am", "fine", "ok", "yes", "no", "the", "a", "\n"] * 6 + ["Claude", "gpt-4o", "palms", "metadata", "Meta", "zeta", "ZetaLabs", "llama3"]
    extra = ["meta", "zeta", "zephyr-7b"]
    rows = []
    for _ in range(300):
        a = " ".join(rng.choice(vocab) for _ in range(6))
        b = " ".join(rng.choice(vocab) for _ in range(6))
        rows.append(([{"role": "user", "content": "q"}, {"role": "assistant", "content": a}], [{"role": "user", "content": "q"}, {"role": "assistant", "content": b}]))
    frame = pd.DataFrame({"model_a": "x", "model_b": "y", "winner": "tie", "conversation_a": [r[0] for r in rows], "conversation_b": [r[1] for r in rows]})
    table = BattleTable(frame, validate=False)
    fast = [identity_leak(a, b, extra) is not None for a, b in rows]
    subs = curation_leak(table, drop=False)[0].frame["identity_leak"].to_numpy()
    whole = curation_leak(table, extra, whole_words=True, drop=False)[0].frame["identity_leak"].to_numpy()
    assert fast == list(subs | whole) and 0 < sum(fast) < len(fast)
