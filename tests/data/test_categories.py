"""Rule category taggers against the labels of 100 real battles, and the category masks (the LLM
taggers: tests/judging/test_taggers.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from openarena.data.battles import BattleTable
from openarena.data.categories import (
    CATEGORY_NAMES,
    categories_from_tags,
    category_mask,
    detect_languages,
    is_code_text,
    is_math_text,
    is_refusal_text,
    prompt_text,
)
from openarena.errors import DataError
from openarena.judging.taggers import tag_battles
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
