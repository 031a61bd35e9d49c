"""Question sets (local copies and the hub code path), judge prompt files, and the crash-safe
JSON-lines log."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from openarena.errors import DataError, SourceUnavailable
from openarena.judging import questions as qmod
from openarena.judging.prompts import get_prompt, list_prompts
from openarena.judging.questions import NEED_REF_CATS, load_questions
from openarena.judging.store import JsonlLog, jsonl_files, read_jsonl
from tests.conftest import DATA, shared_file


@pytest.fixture(scope="module")
def root() -> Path:
    shared_file("arena_hard_auto/data/arena-hard-v0.1/question.jsonl")
    return DATA


def test_arena_hard_v01(root: Path) -> None:
    qs = load_questions("arena-hard-v0.1", local_root=root)
    assert len(qs) == 500 and qs.categories() == Counter({"arena-hard-v0.1": 500})
    q = qs.get("328c149ed45a41c0b9d6f14659e63599")
    assert q.prompt == "Use ABC notation to write a melody in the style of a folk tune."
    assert q.cluster == "ABC Sequence Puzzles & Groups" and q.turns == (q.prompt,)


def test_arena_hard_v20(root: Path) -> None:
    qs = load_questions("arena-hard-v2.0", local_root=root)
    assert len(qs) == 750
    assert qs.categories() == Counter({"hard_prompt": 500, "creative_writing": 250})
    assert Counter(q.subcategory for q in qs) == Counter({"coding": 253, "math": 247, "creative_writing": 250})
    spec = qmod.BENCHMARKS["arena-hard-v2.0"]
    assert spec.baseline["creative_writing"] == "gemini-2.0-flash-001" and spec.baseline["hard_prompt"] == "o3-mini-2025-01-31"


def test_mt_bench_with_references(root: Path) -> None:
    qs = load_questions("mt-bench", local_root=root)
    assert len(qs) == 80 and set(qs.categories().values()) == {10}
    assert all(len(q.turns) == 2 for q in qs)
    with_ref = [q for q in qs if q.category in NEED_REF_CATS]
    assert len(with_ref) == 30 and all(q.reference and len(q.reference) == 2 for q in with_ref)
    q = qs.get("101")
    assert q.category == "reasoning" and q.reference[0].startswith("If you have just overtaken the second person")
    # without the GPT-4 reference file, the short references inside question.jsonl remain
    assert load_questions("mt-bench", local_root=root, with_reference=False).get("101").reference == ("You are in second place.", "Uncertain.")


def test_hub_code_path(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """Without a local root the files come from huggingface_hub.hf_hub_download, with the
    published repository, type and path (the hub itself is unreachable here, so the download
    function is replaced by one that serves the local copy)."""
    import huggingface_hub

    calls = []

    def fake(repo_id: str, filename: str, repo_type: str, revision=None) -> str:
        calls.append((repo_id, repo_type, filename, revision))
        local = {"data/arena-hard-v2.0/question.jsonl": "arena_hard_auto/data/arena-hard-v2.0/question.jsonl",
                 "data/mt_bench/question.jsonl": "fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl",
                 "data/mt_bench/reference_answer/gpt-4.jsonl": "fastchat/fastchat/llm_judge/data/mt_bench/reference_answer/gpt-4.jsonl"}
        return str(root / local[filename])

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake)
    assert len(load_questions("arena-hard-v2.0", revision="abc")) == 750
    assert len(load_questions("mt-bench")) == 80
    assert len(load_questions("hf://datasets/lmarena-ai/arena-hard-auto/data/arena-hard-v2.0/question.jsonl")) == 750
    assert calls == [
        ("lmarena-ai/arena-hard-auto", "dataset", "data/arena-hard-v2.0/question.jsonl", "abc"),
        ("lmsys/mt-bench", "space", "data/mt_bench/question.jsonl", None),
        ("lmsys/mt-bench", "space", "data/mt_bench/reference_answer/gpt-4.jsonl", None),
        ("lmarena-ai/arena-hard-auto", "dataset", "data/arena-hard-v2.0/question.jsonl", None),
    ]

    def offline(**kw):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: offline())
    with pytest.raises(SourceUnavailable, match="lmarena-ai/arena-hard-auto.*Network is unreachable"):
        load_questions("arena-hard-v0.1")


def test_any_jsonl_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "mine.jsonl"
    f.write_text('{"id": 7, "prompt": "Hi?", "category": "chat"}\n{"turns": [{"content": "a"}, "b"]}\n')
    qs = load_questions(f)
    assert [q.uid for q in qs] == ["7", "1"] and qs.get("1").turns == ("a", "b") and qs.get("1").category == "mine"
    f.write_text('{"prompt": "x"}\n{"answer": "no prompt"}\n')
    with pytest.raises(DataError) as e:
        load_questions(f)
    assert (e.value.row, e.value.field) == (1, "prompt")
    f.write_text('{"uid": "a", "prompt": "x"}\n{"uid": "a", "prompt": "y"}\n')
    with pytest.raises(DataError, match="duplicate"):
        load_questions(f)
    with pytest.raises(DataError, match="no such file or benchmark"):
        load_questions(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="not found under"):
        load_questions("arena-hard-v0.1", local_root=tmp_path)


def test_fastchat_prompts_are_verbatim() -> None:
    src = shared_file("fastchat/fastchat/llm_judge/data/judge_prompts.jsonl")
    published = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    assert len(published) == 8
    for r in published:
        p = get_prompt(r["name"])
        assert (p.system_prompt, p.template, p.output_format, p.kind) == (r["system_prompt"], r["prompt_template"], r["output_format"], r["type"])
        assert p.multi_turn == ("multi-turn" in r["name"]) and p.reference == ("math" in r["name"])
        assert "FastChat" in p.source
    assert set(list_prompts()) == {r["name"] for r in published} | {"arena-hard", "arena-hard-creative-writing"}


def test_arena_hard_prompt() -> None:
    p = get_prompt("arena-hard")
    assert p.fields == ("question_1", "answer_1", "answer_2") and p.output_format == "[[A>>B]]"
    assert "Begin your evaluation by generating your own answer" in p.system_prompt
    assert "generating your own answer" not in get_prompt("arena-hard-creative-writing").system_prompt
    for label in ("[[A>>B]]", "[[A>B]]", "[[A=B]]", "[[B>A]]", "[[B>>A]]"):
        assert label in p.system_prompt
    msgs = p.render(question_1="Q", answer_1="one", answer_2="two")
    assert msgs[0]["role"] == "system" and msgs[1]["content"].startswith("<|User Prompt|>\nQ\n\n<|The Start of Assistant A's Answer|>\none\n")
    with pytest.raises(DataError, match="answer_2"):
        p.render(question_1="Q", answer_1="one")
    assert len(p.sha256) == 64 and p.sha256 != get_prompt("arena-hard-creative-writing").sha256
    with pytest.raises(DataError, match="unknown judge prompt"):
        get_prompt("nope")


def test_jsonl_log_survives_a_torn_write(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = JsonlLog(path, key=lambda r: r["k"])
    log.append({"k": 1})
    log.append({"k": 2})
    with open(path, "a") as f:
        f.write('{"k": 3, "text": "cut in the mid')  # a crash in the middle of a write
    again = JsonlLog(path, key=lambda r: r["k"])
    assert again.torn == 1 and [r["k"] for r in again] == [1, 2] and 2 in again and 3 not in again
    again.append({"k": 3})
    assert [r["k"] for r in read_jsonl(path)] == [1, 2, 3]
    # a complete record missing only its newline is kept
    with open(path, "a") as f:
        f.write('{"k": 4}')
    assert [r["k"] for r in JsonlLog(path, key=lambda r: r["k"])] == [1, 2, 3, 4]
    # corruption before the last line is an error, not a crash artifact
    path.write_text('{"k": 1}\nnot json\n{"k": 2}\n')
    with pytest.raises(DataError) as e:
        JsonlLog(path, key=lambda r: r["k"])
    assert e.value.row == 1


def test_jsonl_files_expands_folders(tmp_path: Path) -> None:
    for name in ("b/2.jsonl", "b/deep/1.jsonl", "b/notes.txt", "a.jsonl"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("", encoding="utf-8")
    single = tmp_path / "a.jsonl"
    assert jsonl_files(single) == [single]
    assert jsonl_files([str(tmp_path / "b"), single]) == [tmp_path / "b/2.jsonl", tmp_path / "b/deep/1.jsonl", single]
    assert jsonl_files(tmp_path / "missing.jsonl") == [tmp_path / "missing.jsonl"]
