"""Category taggers: rule tags against the labels of 100 real battles, LLM taggers against a
mock OpenAI-compatible server on loopback, and the category masks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from openarena.data.battles import BattleTable
from openarena.data.categories import (
    CATEGORY_NAMES,
    LLM_TAGGERS,
    TagCache,
    categories_from_tags,
    category_mask,
    detect_languages,
    is_code_text,
    is_math_text,
    is_refusal_text,
    prompt_text,
    run_taggers,
    tag_battles,
)
from openarena.errors import DataError
from tests.conftest import shared_file

LABELED = "fastchat/fastchat/serve/monitor/classify/refusal_test/labeled.jsonl"


def _qid_prefix(frame: pd.DataFrame, mask: np.ndarray) -> set[str]:
    return {q[:8] for q in frame.loc[mask, "question_id"]}


@pytest.fixture(scope="module")
def tagged() -> BattleTable:
    with open(shared_file(LABELED), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    frame = pd.DataFrame(rows)
    frame["file_language"] = frame["language"]
    table = BattleTable(frame, "labeled.jsonl")
    return tag_battles(table, ["coding", "math_rule", "multiturn", "long_user", "no_short", "language", "no_refusal"])


def test_coding_agrees_with_fastchat_is_code(tagged: BattleTable) -> None:
    """The file's is_code (FastChat code_tagger.py): all 100 battles agree, 14 are code."""
    f = tagged.frame
    assert (f["category_coding"] == f["is_code"]).all()
    assert int(f["category_coding"].sum()) == 14


def test_language_agreement_and_every_disagreement(tagged: BattleTable) -> None:
    """lingua vs the file's language (FastChat: polyglot/cld2 on the first user message):
    92 of 100 agree. Each of the 8 disagreements, read by hand:"""
    f = tagged.frame
    differ = f["language"] != f["file_language"]
    assert int((~differ).sum()) == 92
    got = {q[:8]: (a, b) for q, a, b in zip(f["question_id"], f["file_language"], f["language"]) if a != b}
    assert got == {
        # Russian request + a long Python program: both detectors are misled by the code
        # (file: English, lingua: Danish); the user's language is Russian
        "a0bbb0bf": ("English", "Danish"),
        # Russian shell question: polyglot gave up ('unknown'), lingua is right
        "17b53292": ("unknown", "Russian"),
        # short Portuguese question full of English product names (Oracle OCI email delivery,
        # logs, bounce): lingua's miss, polyglot is right
        "5271411b": ("Portuguese", "English"),
        # an English internship description that polyglot could not decide; lingua is right
        "8dec9546": ("unknown", "English"),
        # one Russian sentence + an Android log in Latin letters: both wrong (Russian)
        "87c5eca7": ("English", "German"),
        # English jailbreak preamble then a longer Japanese request: lingua counts the
        # Japanese, polyglot the English; the request is in Japanese
        "ec5ae96a": ("English", "Japanese"),
        # "Hello": lingua's best guess has confidence < 0.3, we say unknown
        "20569493": ("English", "unknown"),
        # Russian statistics question: polyglot 'unknown', lingua is right
        "2384d830": ("unknown", "Russian"),
    }


def test_multiturn_long_short(tagged: BattleTable) -> None:
    f = tagged.frame
    assert (f["category_multiturn"] == (f["turn"] >= 2)).all() and int(f["category_multiturn"].sum()) == 21
    # user tokens = sum of the file's num_tokens of the user messages
    expected = [sum(m["num_tokens"] for m in c if m["role"] == "user") for c in f["conversation_a"]]
    assert f["user_tokens"].tolist() == expected
    assert int(f["category_long_user"].sum()) == 12
    # "Hey!" (3 tokens), "2" (1), "Hi" (1), "Hello" (1) are the only prompts under 5 tokens
    assert _qid_prefix(f, ~f["category_no_short"].to_numpy()) == {"97353ba5", "6eae79ef", "4bce3ba2", "20569493"}


def test_refusal_rule_against_hand_labels_and_refusal_v02(tagged: BattleTable) -> None:
    """Our English refusal rule vs the file's hand label is_refusal (95/100) and FastChat's
    refusal_v0.2 classifier tag (92/100). Every disagreement, read by hand:"""
    f = tagged.frame
    ours = ~f["category_no_refusal"].to_numpy()
    hand = f["is_refusal"].to_numpy()
    v02 = np.array([t["refusal_v0.2"] for t in f["category_tag"]])
    assert int((ours == hand).sum()) == 95 and int((ours == v02).sum()) == 92
    # hand says refusal, we do not: the labels mark later-turn apologies and corrections,
    # mostly not in English ("对不起造成混淆" 2cf13a4e, Korean/English code help b3e4e0bd,
    # Russian code fixes 1fc3ba27, "I apologize for the misunderstanding" 8bb99fa9, "Извините,
    # я неправильно понял" 2384d830); none of them declines the task
    assert _qid_prefix(f, hand & ~ours) == {"2cf13a4e", "b3e4e0bd", "1fc3ba27", "8bb99fa9", "2384d830"}
    assert _qid_prefix(f, ours & ~hand) == set()
    # v0.2 says refusal, we do not: refusals and hedges in Thai (fb004dbf), Russian
    # ("Я не могу скомпоновать", ffea4663), Vietnamese ("tôi không thể hướng dẫn", ad6de47d;
    # 97614017), Arabic ("أنا آسف", bde5211e), Russian (2384d830), and an English "It's
    # impossible to predict" hedge (ec66dd5d): our patterns are English openings only
    assert _qid_prefix(f, v02 & ~ours) == {"fb004dbf", "ffea4663", "ad6de47d", "ec66dd5d", "bde5211e", "97614017", "2384d830"}
    # we say refusal, v0.2 does not: "I apologize, but I'm not sure what you are asking for
    # with just the number '2'" (a clarification request; the hand label agrees with us)
    assert _qid_prefix(f, ours & ~v02) == {"6eae79ef"}


def test_math_rule_on_named_rows(tagged: BattleTable) -> None:
    f = tagged.frame
    flagged = _qid_prefix(f, f["category_math"].to_numpy())
    # stake percentages, integer definition, probability puzzle, hotel-lights counting,
    # sisters and brothers word problems: math by reading; 'ec66dd5d' (Israel 1967, "how
    # many"/"1967") is the rule's false positive
    assert flagged == {"a8784414", "9c640f0e", "e3793d94", "e594d863", "7f672beb", "2fb4490c", "ec66dd5d"}
    # the German word problem and the McDonald's nuggets puzzle are missed (English cues only)
    assert not f.loc[f["question_id"].str.startswith(("5491f2cc", "07e9a4bc")), "category_math"].any()


def test_rule_helpers() -> None:
    assert is_code_text("use ```x```") == (True, ["backticks"])
    assert is_code_text("I love Python.")[0] and is_code_text("how do I git push?") == (True, ["git"])
    assert is_code_text("draw me ascii art of a cat ```") == (False, [])
    assert is_code_text("from torch import nn")[0] and not is_code_text("a nice day at the beach")[0]
    # a ```plaintext block is cut before looking for fences
    assert is_code_text("see:\n```plaintext\nhello\n```\nthanks") == (False, [])
    assert is_refusal_text("I’m sorry, but I can’t help with that.")
    assert is_refusal_text("As an AI language model, I cannot browse the web.")
    assert not is_refusal_text("Sorry to hear that! Here is a plan:")
    assert not is_refusal_text("x" * 400 + " I'm sorry, but I can't help")  # only the opening counts
    assert is_math_text("Solve 2x + 3 = 7") and is_math_text(r"Compute $\frac{1}{2}$")
    assert not is_math_text("Write a poem about the sea") and not is_math_text("```python\nsolve()\n```")
    assert detect_languages(["Bonjour, comment allez-vous aujourd'hui ?", "你好，今天天气怎么样？", "12345", ""]) == ["French", "Chinese", "unknown", "unknown"]
    conv = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    assert prompt_text(conv) == "a\nc" and prompt_text(conv, 2) == "a\n"


def test_category_masks(tagged: BattleTable) -> None:
    f = tagged.frame
    assert category_mask(tagged, "full").all()
    assert int(category_mask(tagged, "english").sum()) == int((f["language"] == "English").sum()) == 62  # 64 in the file, -4 +2 above
    assert int(category_mask(tagged, "Chinese").sum()) == 7
    assert (category_mask(tagged, "no_tie") == ~f["winner"].isin(["tie", "tie (bothbad)"])).all()
    assert (category_mask(tagged, "coding") == f["category_coding"]).all()
    for name in ("hard_6", "if", "creative_writing", "dedup", "hard_english_6"):
        with pytest.raises(DataError):
            category_mask(tagged, name)
    with pytest.raises(DataError, match="unknown category"):
        category_mask(tagged, "industry_law")
    assert {"full", "no_tie", "hard_english_6", "coding", "no_refusal"} <= set(CATEGORY_NAMES)


def test_categories_from_fastchat_tags() -> None:
    frame = pd.DataFrame(
        {
            "model_a": ["x", "x", "x"],
            "model_b": ["y", "y", "y"],
            "winner": ["model_a", "tie", "model_b"],
            "language": ["English", "English", "German"],
            "is_code": [True, False, False],
            "category_tag": [
                {"criteria_v0.1": {c: True for c in ("specificity", "domain_knowledge", "complexity", "problem_solving", "creativity", "technical_accuracy", "real_world")}, "if_v0.1": {"if": True, "score": 5}, "math_v0.1": {"math": False}},
                {"criteria_v0.1": {"specificity": True, "domain_knowledge": False, "complexity": False, "problem_solving": False, "creativity": False, "technical_accuracy": False, "real_world": False}, "if_v0.1": {"if": False, "score": 2}, "refusal_v0.2": {"refusal": True}},
                json.dumps({"criteria_v0.1": {c: True for c in ("specificity", "domain_knowledge", "complexity", "problem_solving", "creativity", "technical_accuracy")}}),
            ],
        }
    )
    t = categories_from_tags(BattleTable(frame))
    assert category_mask(t, "hard_6").tolist() == [True, False, True]
    assert category_mask(t, "hard_english_6").tolist() == [True, False, False]
    assert category_mask(t, "if").tolist() == [True, False, False]
    assert t.frame["if_score"].tolist()[:2] == [5, 2] and t.frame["if_score"].isna().tolist() == [False, False, True]
    assert category_mask(t, "no_refusal").tolist() == [False, False, False]  # NA counts as outside
    assert t.frame["category_no_refusal"].isna().tolist() == [True, False, True]
    assert category_mask(t, "coding").tolist() == [True, False, False]


# --------------------------------------------------------------------------------------------
# LLM taggers against the mock server


def _battles(prompts: list[str]) -> BattleTable:
    conv = lambda p, a: [{"role": "user", "content": p}, {"role": "assistant", "content": a}]  # noqa: E731
    return BattleTable(
        pd.DataFrame(
            {
                "model_a": ["m1"] * len(prompts),
                "model_b": ["m2"] * len(prompts),
                "winner": ["model_a"] * len(prompts),
                "conversation_a": [conv(p, f"answer A to {p}") for p in prompts],
                "conversation_b": [conv(p, f"answer B to {p}") for p in prompts],
            }
        ),
        "mock",
    )


@pytest.fixture()
def mock_server():
    mock = pytest.importorskip("openarena.demo.mock_server")
    rules = {
        # hard prompt criteria (the system prompt names the 7 criteria)
        r"P-HARD": "[1, 2, 3, 4, 5, 6, 7]",
        r"P-EASY": "[1]",
        r"P-TWOLISTS": "Maybe [1, 2] or rather [3, 4]",  # FastChat would say []: unparseable
        r"P-PROSE": "It satisfies specificity and complexity.",  # no list at all
    }
    with mock.MockServer(
        {
            "labeler": mock.Behaviour.by_rules(rules, default="[2]"),
            "if-labeler": mock.Behaviour.by_rules({r"P-HARD": "<score>5</score>", r"P-EASY": "<score>2</score>", r"P-TWOLISTS": "<score>3</score> or <score>4</score>"}, default="Score: 4"),
            "yesno": mock.Behaviour.by_rules({r"P-HARD": "<decision>\nyes\n</decision>", r"P-EASY": "<decision>\n[no]\n</decision>"}, default="<decision>maybe</decision>"),
            "refuser": mock.Behaviour.by_rules({r"answer B to P-HARD": "<decision>\nB\n</decision>"}, default="<decision>neither</decision>"),
            "down": mock.Behaviour.failing(503),
        }
    ) as srv:
        yield srv


def test_llm_hard_prompt_parse_cache_and_report(mock_server, tmp_path) -> None:
    table = _battles(["P-HARD", "P-EASY", "P-TWOLISTS", "P-PROSE", "P-HARD"])  # a repeated prompt
    model = mock_server.model_config("labeler")
    seen: list[tuple[int, int]] = []
    cache_path = tmp_path / "tags.sqlite"
    out, reports = run_taggers(table, ["hard_prompt"], client=model, cache=cache_path, concurrency=3, progress=lambda d, t: seen.append((d, t)))
    f = out.frame
    assert f["category_hard_6"].tolist()[:2] == [True, False] and f["category_hard_6"].isna().tolist() == [False, False, True, True, False]
    assert f["criteria_specificity"].tolist()[:2] == [True, True] and f["criteria_real_world"].tolist()[:2] == [True, False]
    rep = reports[0]
    assert (rep.unique_prompts, rep.cached, rep.calls, rep.unparseable, rep.failed) == (4, 0, 4, 2, 0)
    assert any("[1, 2] or rather [3, 4]" in e for e in rep.examples)
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)
    assert len(mock_server.requests) == 4  # the repeated prompt was asked once
    req = mock_server.requests[0]
    assert req.body["temperature"] == 0 and req.body["max_tokens"] == 512
    assert req.messages[0]["role"] == "system" and req.messages[0]["content"].startswith("Your task is to evaluate how well")
    assert out.steps[-1].name == "tag:hard_prompt" and "2 unparseable" in out.steps[-1].detail
    # second run: every answer from the SQLite file, the server sees no new request
    out2, reports2 = run_taggers(table, ["hard_prompt"], client=model, cache=str(cache_path))
    assert len(mock_server.requests) == 4
    assert (reports2[0].cached, reports2[0].calls, reports2[0].unparseable) == (4, 0, 2)
    assert out2.frame["category_hard_6"].equals(f["category_hard_6"])
    assert len(TagCache(cache_path)) == 4


def test_llm_if_math_creative_refusal(mock_server) -> None:
    table = _battles(["P-HARD", "P-EASY", "P-TWOLISTS", "P-OTHER"])
    out, reps = run_taggers(table, ["if"], client=mock_server.model_config("if-labeler"))
    assert out.frame["if_score"].tolist()[:2] == [5, 2]
    assert out.frame["category_if"].tolist()[:2] == [True, False]
    assert out.frame["category_if"].isna().tolist() == [False, False, True, True]  # two scores / "Score: 4"
    assert reps[0].unparseable == 2
    assert mock_server.requests[-1].messages[1]["content"].startswith("<user_prompt>")

    yes = mock_server.model_config("yesno")
    out, reps = run_taggers(table, ["math", "creative_writing"], client=yes)
    # "<decision>\n[no]\n</decision>": FastChat's creative_writing parser strips the brackets,
    # its math parser does not (so \w+ does not match): unparseable for math, "no" for creative
    assert out.frame["category_creative_writing"].tolist()[:2] == [True, False]
    assert out.frame["category_creative_writing"].isna().tolist() == [False, False, True, True]  # "maybe"
    assert out.frame["category_math"].isna().tolist() == [False, True, True, True]
    assert bool(out.frame["category_math"].iloc[0])
    assert [r.unparseable for r in reps] == [3, 2]

    out, reps = run_taggers(table, ["refusal"], client=mock_server.model_config("refuser"))
    assert out.frame["category_no_refusal"].tolist() == [False, True, True, True]
    body = mock_server.requests[-1].messages[1]["content"]
    assert "<model_B_response>\nanswer B to" in body  # response B is B's (FastChat sent A twice)


def test_llm_failures_are_counted_not_cached(mock_server) -> None:
    from openarena.providers import RetryPolicy

    table = _battles(["P-HARD", "P-EASY"])
    cache = TagCache()
    out, reps = run_taggers(table, ["math"], client=mock_server.model_config("down"), cache=cache, retry=RetryPolicy(max_attempts=2, base_delay_s=0.0))
    assert reps[0].failed == 2 and out.frame["category_math"].isna().all() and len(cache) == 0
    assert "503" in reps[0].errors[0]
    assert len(mock_server.requests_for("down")) == 4  # two attempts per prompt


def test_llm_with_a_plain_function_and_bounded_concurrency() -> None:
    import asyncio

    calls: list[str] = []
    in_flight = [0, 0]

    async def labeler(messages):
        calls.append(messages[1]["content"])
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        await asyncio.sleep(0.01)
        in_flight[0] -= 1
        return "<decision>yes</decision>" if "7" in messages[1]["content"] else "<decision>no</decision>"

    table = _battles([f"question {i}" for i in range(10)])
    out = tag_battles(table, ["math"], client=labeler, concurrency=3)
    assert out.frame["category_math"].tolist() == [i == 7 for i in range(10)]
    assert len(calls) == 10 and in_flight[1] == 3


def test_tagger_errors() -> None:
    table = _battles(["x"])
    with pytest.raises(DataError, match="unknown tagger"):
        tag_battles(table, ["nonsense"])
    with pytest.raises(DataError, match="needs an LLM endpoint"):
        tag_battles(table, ["hard_prompt"])
    with pytest.raises(DataError, match="both write"):
        tag_battles(table, ["math_rule", "math"], client=lambda m: "")
    with pytest.raises(DataError, match="needs column"):
        tag_battles(BattleTable(table.frame.drop(columns=["conversation_a", "conversation_b"])), ["coding"])
    assert set(LLM_TAGGERS) == {"hard_prompt", "if", "math", "creative_writing", "refusal"}
