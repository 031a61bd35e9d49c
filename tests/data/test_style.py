"""Style features: FastChat's definition, checked by hand on real battles and against the
metadata shipped with the Arena-Hard-Auto v2.0 answers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from openarena.data.battles import BattleTable
from openarena.data.style import (
    add_style_columns,
    answer_style,
    count_markdown,
    count_tokens,
    get_encoding,
    remove_code_blocks,
    style_from_metadata,
)
from openarena.errors import DataError
from tests.conftest import shared_file

LABELED = "fastchat/fastchat/serve/monitor/classify/refusal_test/labeled.jsonl"
V2_ANSWERS = "arena_hard_auto/data/arena-hard-v2.0/model_answer"


@pytest.fixture(scope="module")
def labeled() -> BattleTable:
    rows = read_jsonl(shared_file(LABELED))
    return BattleTable(pd.DataFrame(rows), "labeled.jsonl")


def read_jsonl(path) -> list[dict]:
    """JSON lines split on newlines only (str.splitlines would also split on U+2028)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# Counted by reading the answers (question id, side): (tokens, headers, lists, bold).
# tokens are the file's own per-message num_tokens summed over assistant turns.
HAND_COUNTED = {
    # "The odd one out is the **Green Square with black outline**. **Reason:** ..."
    ("95f121ff6cdf4e2a8e3e77cb716a1bc8", "a"): (41, 0, 0, 2),
    # three "* **...:**" bullets, each with a second bold word (**color**, **missing an
    # outline**, **size**); no headers
    ("95f121ff6cdf4e2a8e3e77cb716a1bc8", "b"): (125, 0, 3, 6),
    # **Mesa**, two bullets, **Sadler, Bobcat, and Yosemite**, **Mesa**; *Metal Gear Solid*
    # is italic and does not count
    ("6f35f42426ab40f1ab06f96d8c1fc899", "b"): (80, 0, 2, 3),
    # one sentence with **Olympia**
    ("9c34af77252446dd80b9050a7b6da93b", "b"): (32, 0, 0, 1),
    # "**1. Precise Definition...**" is bold, not an ordered item (the line starts with **);
    # 9 bullets (5 top-level, 4 nested "    * 3² = 9"), 9 bold spans
    ("9c640f0e09ed4a2683ffef542a00ede2", "b"): (227, 0, 9, 9),
    # a python block whose "# 每隔10秒..." comment sits at line start: removed with the code,
    # so no header; then an ordered list 1.-4.
    ("6354a91ca2744be09a5f572908d4a700", "a"): (550, 0, 4, 0),
    # two assistant turns (600 + 207 tokens): three "###" headers, 4 + 3 bullets and 1.-7.,
    # bold **Problem Analysis**, **Algorithm Development**, **Explanation**,
    # **Step-by-Step Reasoning**, then **Final Answer**, **25**, **25**; the code block's
    # "# Execute the function" comment is not a header
    ("e594d863d51e4df39544c06af828770f", "b"): (807, 3, 14, 7),
}


@pytest.mark.parametrize("key", sorted(HAND_COUNTED))
def test_hand_counted_rows(labeled: BattleTable, key: tuple[str, str]) -> None:
    qid, side = key
    styled = add_style_columns(BattleTable(labeled.frame[labeled.frame["question_id"] == qid].copy(), validate=False))
    row = styled.frame.iloc[0]
    got = tuple(int(row[f"{f}_{side}"]) for f in ("tokens", "headers", "lists", "bold"))
    assert got == HAND_COUNTED[key]
    # the same numbers when every token is counted again with our cl100k_base
    recount = add_style_columns(BattleTable(styled.frame.copy(), validate=False), use_num_tokens=False, prefer="compute")
    assert int(recount.frame.iloc[0][f"tokens_{side}"]) == HAND_COUNTED[key][0]


def test_fastchat_num_tokens_are_cl100k(labeled: BattleTable) -> None:
    """Every message's num_tokens in the clean_battle file is our cl100k_base count: this is
    how we know Chatbot Arena counts with encoding_for_model('gpt-3.5-turbo')."""
    msgs = [m for side in ("conversation_a", "conversation_b") for conv in labeled.frame[side] for m in conv]
    assert len(msgs) == 588
    ours = count_tokens([m["content"] for m in msgs], "cl100k_base")
    assert np.array_equal(ours, [m["num_tokens"] for m in msgs])
    o200k = count_tokens([m["content"] for m in msgs], "o200k_base")
    assert (o200k != ours).mean() > 0.5  # the two tokenizers do differ


def test_add_style_columns_whole_file(labeled: BattleTable) -> None:
    styled = add_style_columns(labeled)
    f = styled.frame
    assert len(styled) == 100 and styled.source == "labeled.jsonl"
    for col in ("tokens_a", "tokens_b", "headers_a", "headers_b", "lists_a", "lists_b", "bold_a", "bold_b"):
        assert f[col].dtype == np.int64 and (f[col] >= 0).all()
    # fixed totals over the 100 battles (regression values of this definition)
    assert int(f["tokens_a"].sum() + f["tokens_b"].sum()) == sum(
        m["num_tokens"] for side in ("conversation_a", "conversation_b") for conv in labeled.frame[side] for m in conv if m["role"] == "assistant"
    )
    # regression values of this definition on the file (28 answers use headers)
    assert (f["headers_a"] > 0).sum() + (f["headers_b"] > 0).sum() == 28
    # the style-controlled fit can consume them
    from openarena.ratings.covariates import battle_covariates

    X, infos = battle_covariates(styled, "style")
    assert X.shape == (100, 4) and [i.name for i in infos] == ["tokens", "headers", "lists", "bold"]


def test_metadata_is_preferred_and_mixed_with_computed(labeled: BattleTable) -> None:
    frame = labeled.frame.iloc[:3].copy()
    meta = {
        "sum_assistant_a_tokens": 11,
        "sum_assistant_b_tokens": 12,
        "header_count_a": {"h1": 1, "h2": 2, "h3": 0, "h4": 0, "h5": 0, "h6": 0},
        "header_count_b": 0,
        "list_count_a": {"ordered": 3, "unordered": 4},
        "list_count_b": {"ordered": 0, "unordered": 1},
        "bold_count_a": {"**": 5, "__": 1},
        "bold_count_b": {"**": 0, "__": 0},
    }
    frame["conv_metadata"] = [meta, None, {"sum_assistant_a_tokens": 1}]  # rows 1, 2 computed
    out = add_style_columns(BattleTable(frame, validate=False)).frame
    assert out.iloc[0][["tokens_a", "tokens_b", "headers_a", "lists_a", "lists_b", "bold_a"]].tolist() == [11, 12, 3, 7, 1, 6]
    computed = add_style_columns(BattleTable(frame, validate=False), prefer="compute").frame
    assert out.iloc[1:].equals(computed.iloc[1:])
    assert computed.iloc[0]["tokens_a"] == 572  # row fb004dbf: the real count, metadata ignored


def test_missing_inputs_raise_with_row() -> None:
    frame = pd.DataFrame({"model_a": ["x", "y"], "model_b": ["y", "x"], "winner": ["tie", "tie"], "conv_metadata": [None, {}]})
    with pytest.raises(DataError) as err:
        add_style_columns(BattleTable(frame, "f.jsonl"))
    assert err.value.row == 0 and err.value.field == "conversation_a" and "2 row(s)" in str(err.value)
    frame["conversation_a"] = [[{"role": "assistant", "content": "x"}], "not json"]
    frame["conversation_b"] = [[{"role": "assistant", "content": "y"}], []]
    with pytest.raises(DataError) as err:
        add_style_columns(BattleTable(frame, "f.jsonl"))
    assert err.value.row == 1 and err.value.field == "conversation_a"


def test_fastchat_regex_details() -> None:
    # remove_pattern deletes the inner text of a block everywhere, the fences stay
    assert remove_code_blocks("x = 1\n```x = 1```\nx = 1") == "\n``````\n"
    text = "# h1\n## h2\n#no\n ### indented no\n#\n###### h6\n####### seven no"
    c = count_markdown(text)
    assert c.h == (2, 1, 0, 0, 0, 1)  # "#\n" counts (\\s matches the newline)
    lists = "1. a\n  2. b\n3.no\n- c\n * d\n+ e\n-no\n10) no"
    assert count_markdown(lists).ordered == 2 and count_markdown(lists).unordered == 3
    # an unclosed "** not" line: the next line's "** and __u__ and **" pairs up (FastChat's
    # regex, no balancing), "****" is not bold
    bold = "**a** and **b c** but ** not\nclosed** and __u__ and ****"
    c = count_markdown(bold)
    assert (c.bold_star, c.bold_under) == (3, 1)
    code = "# title\n```python\n# comment\n- not a list\n```\n- item"
    assert (count_markdown(code).headers, count_markdown(code).lists) == (1, 1)
    assert (count_markdown(code, remove_code=False).headers, count_markdown(code, remove_code=False).lists) == (2, 2)


def test_answer_style_single_answer_and_turns() -> None:
    s = answer_style("## Plan\n\n1. **Read** the file\n2. Count\n\n```\n# not a header\n```")
    assert (s["headers"], s["lists"], s["bold"]) == (1, 2, 1)
    assert s["header_count"]["h2"] == 1 and s["list_count"] == {"ordered": 2, "unordered": 0}
    assert s["tokens"] == count_tokens(["## Plan\n\n1. **Read** the file\n2. Count\n\n```\n# not a header\n```"])[0]
    two = answer_style(["Hello world", "- a\n- b"])
    # per-turn counts summed ("Hello world" 2 tokens, "- a\n- b" 5)
    assert two["tokens"] == 7 == int(count_tokens(["Hello world"])[0] + count_tokens(["- a\n- b"])[0])
    assert two["lists"] == 2


def test_style_from_metadata_layouts() -> None:
    assert style_from_metadata({"sum_assistant_a_tokens": 1}) is None
    assert style_from_metadata("not json") is None
    full = {f"{k}_{s}": 2 for k in ("header_count", "list_count", "bold_count") for s in "ab"}
    full |= {"sum_assistant_a_tokens": 5, "sum_assistant_b_tokens": 7}
    got = style_from_metadata(json.dumps(full))
    assert got == {"tokens_a": 5, "tokens_b": 7, "headers_a": 2, "headers_b": 2, "lists_a": 2, "lists_b": 2, "bold_a": 2, "bold_b": 2}


def test_encodings_offline() -> None:
    enc = get_encoding("gpt-3.5-turbo")
    assert enc.name == "cl100k_base" and enc.encode("hello world") == [15339, 1917]
    enc4o = get_encoding("gpt-4o")
    assert enc4o.name == "o200k_base" and enc4o.encode("hello world") == [24912, 2375]
    with pytest.raises(DataError):
        get_encoding("p50k_edit")


@pytest.fixture(scope="module")
def v2_answers() -> list[dict]:
    rows = []
    for name in ("o3-mini-2025-01-31.jsonl", "sky-t1-32b.jsonl"):
        rows += read_jsonl(shared_file(f"{V2_ANSWERS}/{name}"))
    return rows


def test_arena_hard_v2_metadata_agreement(v2_answers: list[dict]) -> None:
    """Our features against the metadata shipped with the v2.0 answers (1,498 answers):
    markdown counts exact on all, tokens exact on all with o200k_base (gpt-4o, the
    tokenizer of arena-hard v2's gen_answer.py), while cl100k_base is not within 2%."""
    texts = [r["messages"][-1]["content"]["answer"] for r in v2_answers]
    assert len(texts) == 1498
    md_exact = sum(
        count_markdown(t).as_metadata() == {k: r["metadata"][k] for k in ("header_count", "list_count", "bold_count")}
        for t, r in zip(texts, v2_answers)
    )
    assert md_exact == 1498
    shipped = np.array([r["metadata"]["token_len"] for r in v2_answers])
    ours = count_tokens(texts, "o200k_base")
    assert np.array_equal(ours, shipped)
    cl100k = count_tokens(texts, "cl100k_base")
    within = np.abs(cl100k / shipped - 1) <= 0.02
    assert within.mean() < 0.6
