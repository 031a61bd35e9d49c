"""Single-answer grading (MT-Bench): the judge rates each answer 1-10 as "[[rating]]".

As FastChat's llm_judge does: every turn of every question is graded separately; turn 1 with
``single-v1`` (or ``single-math-v1`` with the reference answer for the categories of
:data:`~openarena.judging.questions.NEED_REF_CATS`: math, reasoning, coding), turn 2 with the
multi-turn prompts, which show the whole conversation and ask to grade the second answer.
One record per (model, question, turn) is appended to a judgment file (crash-safe, resumable),
with the score, status and reason, the judge's output, and the judge model, prompt
(name + sha256), temperature, seed and package version. Unparseable ratings are retried once,
then recorded with ``score: null`` and their status: they never enter an average.

:func:`openarena.judging.report.mt_bench_summary` averages the scores per model, per turn and
per category.

Source: FastChat fastchat/llm_judge/gen_judgment.py (make_match_single, make_judge_single),
common.py (run_judge_single, NEED_REF_CATS), show_result.py; Zheng et al. (2023),
Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena, section 3.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openarena.errors import DataError
from openarena.judging.answer_records import Answer
from openarena.judging.judge import JudgeOutcome, JudgeSettings, run_judgments
from openarena.judging.parse import Parsed, parse_rating
from openarena.judging.prompts import JudgePrompt, get_prompt
from openarena.judging.questions import NEED_REF_CATS, Question
from openarena.judging.store import JsonlLog, jsonl_files, read_jsonl

__all__ = [
    "DEFAULT_PROMPTS",
    "SingleFailure",
    "SingleReport",
    "agrade_single",
    "grade_single",
    "load_single_judgments",
    "render_single",
]

#: The MT-Bench scale (the bounds of :func:`~openarena.judging.parse.parse_rating`).
RATING_LOW, RATING_HIGH = 1.0, 10.0

#: FastChat's judge prompts: (multi_turn, needs reference) -> prompt name.
DEFAULT_PROMPTS: dict[tuple[bool, bool], str] = {
    (False, False): "single-v1",
    (False, True): "single-math-v1",
    (True, False): "single-v1-multi-turn",
    (True, True): "single-math-v1-multi-turn",
}


def render_single(prompt: JudgePrompt, question: Question, answer: Answer, turn: int) -> list[dict[str, str]]:
    """The judge messages grading ``answer`` at ``turn`` (1-based).

    Fields offered: question / answer / ref_answer_1 (single-turn prompts), question_<i>,
    answer_<i>, ref_answer_<i> for i <= turn (multi-turn prompts), as FastChat's
    play_a_match_single.
    Raises: DataError if the answer has fewer turns than ``turn`` or the template needs a field
    that is not available (e.g. a reference answer).
    """
    if len(answer.turns) < turn:
        raise DataError(f"answer of {answer.model!r} to {answer.uid!r} has {len(answer.turns)} turn(s)", field="turns",
                        expected=f"at least {turn}")
    v: dict[str, str] = {"question": question.turns[turn - 1], "answer": answer.turns[turn - 1]}
    for i in range(turn):
        v[f"question_{i + 1}"] = question.turns[i]
        v[f"answer_{i + 1}"] = answer.turns[i]
    for i, t in enumerate(question.reference or ()):
        v[f"ref_answer_{i + 1}"] = t
    return prompt.render(**v)


@dataclass(frozen=True)
class SingleFailure:
    """A grading left undone because the judge call failed: uid, model, turn, error."""

    uid: str
    model: str
    turn: int
    error: str


@dataclass
class SingleReport:
    """What one :func:`grade_single` run did: path; gradings asked for; existing (skipped);
    graded (this run); unparseable (after one retry); retried; missing_answers (model, uid);
    failures (judge calls that failed, not recorded); calls, cache_hits, tokens, cost_usd;
    elapsed_s."""

    path: Path
    gradings: int = 0
    existing: int = 0
    graded: int = 0
    unparseable: int = 0
    retried: int = 0
    missing_answers: list[tuple[str, str]] = field(default_factory=list)
    failures: list[SingleFailure] = field(default_factory=list)
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    elapsed_s: float = 0.0


#: One grading to make: question, model, turn (1-based), prompt.
_Grading = tuple[Question, str, int, JudgePrompt]


def _judge_name(r: Mapping[str, Any]) -> str:
    j = r.get("judge")
    if isinstance(j, Mapping):
        return str(j.get("model", ""))
    if isinstance(j, (list, tuple)) and j:
        return str(j[0])
    return str(j or "")


async def agrade_single(
    questions: Iterable[Question],
    answers: Mapping[str, Mapping[str, Answer]],
    models: Sequence[str],
    judge: JudgeSettings,
    out_path: str | os.PathLike[str],
    *,
    prompts: Mapping[tuple[bool, bool], str | JudgePrompt] | None = None,
    turns: Sequence[int] | None = None,
    concurrency: int = 8,
    cache: Any = None,
    progress: Callable[[int, int], object] | None = None,
    fsync: bool = True,
) -> SingleReport:
    """Grade the missing (model, question, turn) triples; see :func:`grade_single`."""
    t0 = time.perf_counter()
    table = {k: get_prompt(v) for k, v in (prompts or DEFAULT_PROMPTS).items()}
    for jp in table.values():
        if jp.kind != "single":
            raise DataError(f"prompt {jp.name!r} is a {jp.kind} prompt", jp.path, field="prompt", expected="a single-answer prompt")
    log = JsonlLog(out_path, key=lambda r: (_judge_name(r), r["model"], str(r["uid"]), int(r["turn"])), fsync=fsync)
    report = SingleReport(Path(out_path))
    tasks: list[_Grading] = []
    for q in questions:
        need_ref = q.category in NEED_REF_CATS
        if need_ref and not q.reference:
            raise DataError(f"question {q.uid!r} ({q.category}) has no reference answer", field="reference",
                            expected="reference answers for math, reasoning and coding (load_questions('mt-bench'))")
        for m in models:
            if q.uid not in answers.get(m, {}):
                report.missing_answers.append((m, q.uid))
                continue
            for turn in (turns or range(1, len(q.turns) + 1)):
                if turn > len(q.turns):
                    continue
                report.gradings += 1
                if (judge.name, m, q.uid, turn) in log:
                    report.existing += 1
                    continue
                tasks.append((q, m, turn, table[(turn > 1, need_ref)]))
    provenance = {jp.name: judge.provenance(jp) for jp in table.values()}

    def prepare(task: _Grading) -> tuple[JudgePrompt, list[dict[str, str]], Callable[[str], Parsed]]:
        q, m, turn, jp = task
        return jp, render_single(jp, q, answers[m][q.uid], turn), lambda t: parse_rating(t, judge.rating_rule)

    def fields(task: _Grading, out: JudgeOutcome) -> dict[str, Any]:
        q, m, turn, _ = task
        return {
            "uid": q.uid,
            "question_id": q.uid,
            "category": q.category,
            "model": m,
            "turn": turn,
            "score": out.parsed.value if out.parsed.ok else None,
        }

    report.graded = await run_judgments(
        judge, tasks, prepare, fields, lambda t, error: SingleFailure(t[0].uid, t[1], t[2], error),
        log=log, report=report, provenance=provenance, cache=cache, concurrency=concurrency, progress=progress,
    )
    report.elapsed_s = time.perf_counter() - t0
    return report


def grade_single(
    questions: Iterable[Question],
    answers: Mapping[str, Mapping[str, Answer]],
    models: Sequence[str],
    judge: JudgeSettings,
    out_path: str | os.PathLike[str],
    **kwargs: Any,
) -> SingleReport:
    """MT-Bench single-answer grading of every turn of every model's answers.

    Parameters:
        questions: with reference answers for math, reasoning and coding
            (``load_questions('mt-bench')`` attaches them).
        answers: {model: {uid: Answer}}; models: the models to grade.
        judge: JudgeSettings (FastChat: GPT-4, temperature 0, max_tokens 2048).
        out_path: the judgment JSONL file (appended; existing gradings are skipped).
        prompts: {(multi_turn, needs_reference): prompt} (default :data:`DEFAULT_PROMPTS`).
        turns: which turns to grade (default all).
        concurrency, cache, progress, fsync: as :func:`~openarena.judging.pairwise.judge_pairwise`.
    Returns: SingleReport.
    Raises: DataError for a reference category question without reference answer, or a
        non-single prompt; KeyboardInterrupt passes through with finished gradings on disk.
    """
    return asyncio.run(agrade_single(questions, answers, models, judge, out_path, **kwargs))


def load_single_judgments(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                          default_judge: str = "unknown") -> list[dict[str, Any]]:
    """Single-grading records from our judgment files, FastChat's (``question_id, model,
    judge: [judge, prompt], score (-1 = failed), turn``) or arena-bench-v1's (``question_id,
    model, judgment, score``: no turn, taken as 1; no judge, taken as ``default_judge``; a
    null score is a grading without rating, status missing).

    Returns: records with uid, model, turn, score (float or None), status, category (when
    recorded), judge. A score outside the 1-10 scale (or not finite) is treated as the rating
    parser treats one (:func:`~openarena.judging.parse.parse_rating`): score None, status
    ``out_of_range``, and a reason naming the file and row; it is counted as unparseable and
    never averaged. A negative score stays FastChat's "no rating found" (status missing).
    Raises: DataError for a record without model, question id, turn or score, a score that is
    not a number or a turn that is not a positive integer.
    """
    out: list[dict[str, Any]] = []
    for f in jsonl_files(paths):
        for i, rec in enumerate(read_jsonl(f, tolerate_torn_tail=True)):
            for key in ("model", "score"):
                if key not in rec:
                    raise DataError(f"not a single-grading record (no {key!r})", str(f), i, key, "MT-Bench judgment records")
            uid = rec.get("uid", rec.get("question_id"))
            if uid is None:
                raise DataError("no question id", str(f), i, "question_id", "uid or question_id")
            score = rec["score"]
            if score is not None:
                try:
                    score = float(score)
                except (TypeError, ValueError):
                    raise DataError(f"score {score!r} is not a number", str(f), i, "score", "a number or null") from None
            raw_turn = rec.get("turn", 1)  # arena-bench-v1 files grade one turn and omit it
            try:
                turn = int(raw_turn)
                if isinstance(raw_turn, bool) or turn != float(raw_turn) or turn < 1:
                    raise ValueError
            except (TypeError, ValueError, OverflowError):
                raise DataError(f"turn {raw_turn!r} is not a turn number", str(f), i, "turn", "1, 2, ...") from None
            reason = None
            if score is not None and score < 0:  # FastChat's -1 = no rating found
                score = None
            elif score is not None and not RATING_LOW <= score <= RATING_HIGH:  # also nan, inf
                reason = f"rating {score:g} is outside {RATING_LOW:g}..{RATING_HIGH:g} ({f}, row {i + 1}, field 'score')"
                score = None
            status = "out_of_range" if reason else rec.get("status", "ok" if score is not None else "missing")
            j = rec.get("judge")
            judge = dict(j) if isinstance(j, Mapping) else (
                {"model": str(j[0]), "prompt": str(j[1]) if len(j) > 1 else None} if isinstance(j, (list, tuple)) and j
                else {"model": str(j or default_judge)})
            extra = {"reason": reason} if reason else {}
            out.append({**rec, "uid": str(uid), "turn": int(turn), "score": score, "status": status, "judge": judge, **extra})
    return out
