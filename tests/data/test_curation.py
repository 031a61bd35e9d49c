"""Curation: identity leaks, FastChat's prompt de-duplication (checked against its algorithm
written out literally) and MinHash near duplicates."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from openarena.data.battles import BattleTable
from openarena.data.categories import category_mask
from openarena.data.curation import IDENTITY_WORDS, dedup_key, dedup_prompts, identity_leak, near_duplicates
from openarena.errors import DataError
from tests.conftest import shared_file

LABELED = "fastchat/fastchat/serve/monitor/classify/refusal_test/labeled.jsonl"


def _conv(user: str | list[str], answer: str = "ok") -> list[dict]:
    users = [user] if isinstance(user, str) else user
    out = []
    for u in users:
        out += [{"role": "user", "content": u}, {"role": "assistant", "content": answer}]
    return out


def _table(prompts: list, answers_a: list[str] | None = None, answers_b: list[str] | None = None) -> BattleTable:
    n = len(prompts)
    answers_a = answers_a or ["fine"] * n
    answers_b = answers_b or ["good"] * n
    return BattleTable(
        pd.DataFrame(
            {
                "model_a": ["m1"] * n,
                "model_b": ["m2"] * n,
                "winner": (["model_a", "model_b", "tie"] * n)[:n],
                "conversation_a": [_conv(p, a) for p, a in zip(prompts, answers_a)],
                "conversation_b": [_conv(p, b) for p, b in zip(prompts, answers_b)],
            }
        ),
        "synthetic",
    )


@pytest.fixture(scope="module")
def labeled() -> BattleTable:
    with open(shared_file(LABELED), encoding="utf-8") as f:
        return BattleTable(pd.DataFrame([json.loads(line) for line in f if line.strip()]), "labeled.jsonl")


def test_identity_leak_on_fastchat_output_and_custom_words(labeled: BattleTable) -> None:
    # the file is FastChat clean_battle output, already filtered with these very words
    out, step = identity_leak(labeled)
    assert (step.name, step.removed, step.remaining) == ("identity_leak", 0, 100) and len(out) == 100
    # a configurable list: "facebook" names a vendor in one battle, in its prompt and both
    # answers ("how does intern calibration work at meta (formerly facebook)")
    out, step = identity_leak(labeled, ["facebook"])
    gone = set(labeled.frame["question_id"]) - set(out.frame["question_id"])
    assert gone == {"c28ae21bc728400e881cbf886b018c4d"}
    assert (step.removed, step.remaining) == (1, 99) and "facebook 1" in step.detail
    assert out.steps[-1] == step


def test_identity_leak_rules() -> None:
    t = _table(
        ["Are you ChatGPT?", "hello", "what is napalm", "tell me about palm oil", "hi"],
        answers_a=["No.", "I am Claude, made by Anthropic.", "a weapon", "an oil", "hi"],
    )
    out, step = identity_leak(t)
    assert step.removed == 4 and out.frame.index.tolist() == [4]
    # counted once per battle, under the first word of FastChat's list it contains
    assert "chatgpt 1" in step.detail and "anthropic 1" in step.detail and "palm 2" in step.detail
    out, step = identity_leak(t, whole_words=True)
    assert step.removed == 3 and out.frame.index.tolist() == [2, 4]  # "napalm" is not "palm"
    flagged, step = identity_leak(t, drop=False)
    assert flagged.frame["identity_leak"].tolist() == [True, True, True, True, False] and step.removed == 0
    assert len(IDENTITY_WORDS) == 33
    with pytest.raises(DataError):
        identity_leak(BattleTable(t.frame.drop(columns=["conversation_b"])))


def _fastchat_dedup(convs: list[list[dict]], percentile: float) -> list[dict]:
    """FastChat deduplication.py, statement by statement (the reference)."""
    all_convs_new = []
    for conversation_a in convs:
        row = {}
        conv = ""
        for turns in conversation_a:
            if turns["role"] == "user":
                conv += f"{turns['content']}\n"
        row["post_process_conv"] = conv[:10000]
        all_convs_new.append(row)
    df = pd.DataFrame(all_convs_new)
    prompt_counts = df["post_process_conv"].value_counts()
    percentile_cutoff = prompt_counts.quantile(percentile)
    high_frequency_prompts = prompt_counts[prompt_counts > percentile_cutoff].index
    dedup_tags = np.array([{"high_freq": False, "sampled": True} for _ in range(len(df))])
    high_freq_groups = df.groupby("post_process_conv")
    for prompt in high_frequency_prompts:
        df_high_freq = high_freq_groups.get_group(prompt)
        sampled_indices = df_high_freq.sample(n=int(percentile_cutoff), random_state=42).index
        dedup_tags[df_high_freq.index] = {"high_freq": True, "sampled": False}
        dedup_tags[sampled_indices] = {"high_freq": True, "sampled": True}
    return list(dedup_tags)


def test_dedup_matches_fastchat_exactly() -> None:
    rng = np.random.default_rng(7)
    # 3,000 battles: 2,520 draws from 1,500 rare prompts plus a few very frequent ones ("hi"
    # x 300, "hello" x 120, a two-turn prompt x 60), in random order
    prompts: list = [f"question {int(k)}" for k in rng.integers(0, 1500, size=2520)]
    prompts += ["hi"] * 300 + ["hello"] * 120 + [["tell me a joke", "another"]] * 60
    order = rng.permutation(len(prompts))
    prompts = [prompts[i] for i in order]
    table = _table(prompts)
    for pct in (0.999, 0.99, 0.9):
        out, step = dedup_prompts(table, percentile=pct)
        ref = _fastchat_dedup(list(table.frame["conversation_a"]), pct)
        assert out.frame["dedup_high_freq"].tolist() == [t["high_freq"] for t in ref]
        assert out.frame["dedup_sampled"].tolist() == [t["sampled"] for t in ref]
        assert step.removed == 0 and len(out) == 3000
    out, step = dedup_prompts(table, percentile=0.999)
    f = out.frame
    counts = pd.Series([dedup_key(c) for c in f["conversation_a"]]).value_counts()
    cutoff = counts.quantile(0.999)
    assert 60 < cutoff < 120  # between the 3rd and 2nd most frequent prompt
    hi_rows = np.array([dedup_key(c) == "hi\n" for c in f["conversation_a"]])
    assert f.loc[hi_rows, "dedup_high_freq"].all() and int(f.loc[hi_rows, "dedup_sampled"].sum()) == int(cutoff)
    assert f.loc[~f["dedup_high_freq"], "dedup_sampled"].all()
    # dropping: removed = battles not sampled; the 'dedup' category is the sampled ones
    dropped, step2 = dedup_prompts(table, drop=True)
    assert step2.removed == int((~f["dedup_sampled"]).sum()) == 3000 - len(dropped) == (300 - int(cutoff)) + (120 - int(cutoff))
    assert category_mask(out, "dedup").sum() == len(dropped)
    assert dropped.steps[-1].name == "dedup"


def test_dedup_key_and_errors() -> None:
    conv = _conv(["a" * 6000, "b" * 6000])
    assert dedup_key(conv) == "a" * 6000 + "\n" + "b" * 3999 and len(dedup_key(conv)) == 10_000
    with pytest.raises(DataError):
        dedup_prompts(_table(["x"]), percentile=1.5)


def test_near_duplicates() -> None:
    base = "Write a short poem about the ocean at night, with silver moonlight on the waves."
    prompts = [
        base,
        base.replace("short", "brief"),  # one word changed
        base + " Please.",
        base,  # exact copy: same prompt, not a second cluster member
        "Explain how a hash table handles collisions with open addressing.",
        "Explain how a hash table handles collisions using open addressing!",
        "What is the capital of France?",
        "Give me three tips for learning the piano as an adult.",
    ]
    out, step, rep = near_duplicates(_table(prompts), threshold=0.7)
    c = out.frame["near_dup_cluster"].tolist()
    assert c[0] == c[1] == c[2] == c[3] >= 0 and c[4] == c[5] >= 0 and c[4] != c[0]
    assert c[6] == c[7] == -1
    assert rep.n_clusters == 2 and rep.n_battles == 6 and step.removed == 0
    assert set(rep.clusters["battles"]) == {1, 2}  # the exact copy counts 2 battles for one prompt
    # a stricter threshold splits the poems with a changed word from the rest
    _, _, strict = near_duplicates(_table(prompts), threshold=0.95)
    assert strict.n_clusters < 2 or strict.n_battles < 6
    with pytest.raises(DataError):
        near_duplicates(_table(prompts), shingle="byte")


def test_near_duplicates_on_real_prompts(labeled: BattleTable) -> None:
    # the 100 labeled battles have 100 different prompts; two HAR-model questions are the
    # closest pair but far from near duplicates
    out, step, rep = near_duplicates(labeled)
    assert rep.n_clusters == 0 and (out.frame["near_dup_cluster"] == -1).all()
