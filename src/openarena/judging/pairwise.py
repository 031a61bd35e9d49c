"""Pairwise judging against a baseline, in both orders (Arena-Hard-Auto).

For every question and every model, the judge sees the model's answer and the baseline's
answer twice: game 1 with the baseline as assistant A and the model as B, game 2 swapped
(arena-hard-auto gen_judgment.py: ``game % 2 == 1`` swaps the positions). Each game's verdict
is one of A>>B, A>B, A=B, B>A, B>>A (from A's point of view). One record per game is appended to
a judgment file (crash-safe, resumable: a re-run judges only the missing games), holding the
verdict, its status, the judge's full output, and the judge model, prompt (name + sha256),
temperature, seed and package version.

:func:`judgments_to_battles` turns the games into battle rows for the ratings engine:
model_a = baseline, model_b = model, one row per game, and a "much better" verdict (A>>B, B>>A)
counts as 3 rows (Arena-Hard show_result.py ``WEIGHT = 3``). A question whose two games are not
both parsed is left out entirely (arena-hard-auto v2 show_result.py drops such "null
judgments"); the count is reported.

Source: arena-hard-auto gen_judgment.py and show_result.py (v0.1: get_battles_from_judgment;
v2.0: load_judgments, label_to_score); Li et al. (2024), arXiv:2406.11939, section 4.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from openarena.data.battles import BattleTable
from openarena.errors import DataError
from openarena.judging.answer_records import Answer
from openarena.judging.judge import JudgeOutcome, JudgeSettings, run_judgments
from openarena.judging.parse import LABELS, Parsed, label_outcome, normalize_label, parse_verdict, swap_label
from openarena.judging.prompts import JudgePrompt, get_prompt
from openarena.judging.questions import Question
from openarena.judging.store import JsonlLog, jsonl_files, read_jsonl

__all__ = [
    "PairwiseFailure",
    "PairwiseReport",
    "ajudge_pairwise",
    "judge_pairwise",
    "judgments_to_battles",
    "load_judgments",
    "render_pair",
]

MUCH_BETTER_WEIGHT = 3

#: How two games of one question become battles. ``arena-hard``: every game counts on its own
#: (a "much better" verdict as MUCH_BETTER_WEIGHT rows; arena-hard-auto show_result.py).
#: ``fastchat``: one battle per question, a win only when both orders agree, otherwise a tie
#: (FastChat llm_judge show_result.py / compute_agreement: "inconsistent" verdicts are ties).
PAIR_RULES = ("arena-hard", "fastchat")


def _pick(spec: Any, category: str, what: str) -> Any:
    if isinstance(spec, Mapping):
        if category in spec:
            return spec[category]
        if "*" in spec:
            return spec["*"]
        raise DataError(f"no {what} for category {category!r}", field=what, expected="one of " + ", ".join(map(str, spec)))
    return spec


def render_pair(prompt: JudgePrompt, question: Question, a: Answer, b: Answer) -> list[dict[str, str]]:
    """The judge messages for answers ``a`` (assistant A) and ``b`` (assistant B).

    Fields offered to the template: question / question_<i> (user turns), answer_a / answer_b
    and answer_a_<i> / answer_b_<i> (FastChat names), answer_<i> (arena-hard numbering: A's
    turns first, then B's), ref_answer_<i> (reference answers, when the question has them).
    Raises: DataError if the template needs a field that is not available.
    """
    v: dict[str, str] = {"question": question.turns[0], "answer_a": a.turns[0], "answer_b": b.turns[0]}
    for i, t in enumerate(question.turns):
        v[f"question_{i + 1}"] = t
    for i, t in enumerate(a.turns):
        v[f"answer_a_{i + 1}"] = t
        v[f"answer_{i + 1}"] = t
    for i, t in enumerate(b.turns):
        v[f"answer_b_{i + 1}"] = t
        v[f"answer_{len(a.turns) + i + 1}"] = t
    for i, t in enumerate(question.reference or ()):
        v[f"ref_answer_{i + 1}"] = t
    return prompt.render(**v)


@dataclass(frozen=True)
class PairwiseFailure:
    """A game left unjudged because the judge call failed: uid, model, game, error."""

    uid: str
    model: str
    game: int
    error: str


@dataclass
class PairwiseReport:
    """What one :func:`judge_pairwise` run did.

    Attributes: path; games, games asked for; existing, already judged before (skipped);
    judged, judged in this run; unparseable, games of this run whose verdict stayed
    unparseable after one retry (recorded with status and reason); retried, games that needed
    the retry; missing_answers, (model, uid) of the answers that were not there (the model's or
    baseline); failures, games whose judge call failed (not recorded, a re-run retries them);
    calls, cache_hits, prompt_tokens, completion_tokens, cost_usd (this run); elapsed_s.
    """

    path: Path
    games: int = 0
    existing: int = 0
    judged: int = 0
    unparseable: int = 0
    retried: int = 0
    missing_answers: list[tuple[str, str]] = field(default_factory=list)
    failures: list[PairwiseFailure] = field(default_factory=list)
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    elapsed_s: float = 0.0


#: One game to judge: question, model, baseline, game (1: baseline as A, 2: swapped), prompt.
_Game = tuple[Question, str, str, int, JudgePrompt]


def _key(r: Mapping[str, Any]) -> tuple:
    return (r["judge"]["model"], r["model"], r["baseline"], str(r["uid"]), int(r["game"]))


async def ajudge_pairwise(
    questions: Iterable[Question],
    answers: Mapping[str, Mapping[str, Answer]],
    models: Sequence[str],
    judge: JudgeSettings,
    out_path: str | os.PathLike[str],
    *,
    baseline: str | Mapping[str, str],
    prompt: str | JudgePrompt | Mapping[str, str | JudgePrompt] = "arena-hard",
    both_orders: bool = True,
    concurrency: int = 8,
    cache: Any = None,
    progress: Callable[[int, int], object] | None = None,
    fsync: bool = True,
) -> PairwiseReport:
    """Judge the missing games; see :func:`judge_pairwise`."""
    t0 = time.perf_counter()
    log = JsonlLog(out_path, key=_key, fsync=fsync)
    report = PairwiseReport(Path(out_path))
    tasks: list[_Game] = []
    for q in questions:
        base = _pick(baseline, q.category, "baseline")
        jp = get_prompt(_pick(prompt, q.category, "prompt"))
        if jp.kind != "pairwise":
            raise DataError(f"prompt {jp.name!r} is a {jp.kind} prompt", jp.path, field="prompt", expected="a pairwise prompt")
        for m in models:
            if m == base:
                continue
            if q.uid not in answers.get(m, {}) or q.uid not in answers.get(base, {}):
                for who in (m, base):  # name the side whose answer is missing
                    if q.uid not in answers.get(who, {}) and (who, q.uid) not in report.missing_answers:
                        report.missing_answers.append((who, q.uid))
                continue
            for game in ((1, 2) if both_orders else (1,)):
                report.games += 1
                if (judge.name, m, base, q.uid, game) in log:
                    report.existing += 1
                    continue
                tasks.append((q, m, base, game, jp))
    provenance = {jp.name: judge.provenance(jp) for _, _, _, _, jp in tasks}

    def positions(task: _Game) -> tuple[Answer, Answer]:
        q, m, base, game, _ = task
        ans_m, ans_b = answers[m][q.uid], answers[base][q.uid]
        return (ans_b, ans_m) if game == 1 else (ans_m, ans_b)

    def prepare(task: _Game) -> tuple[JudgePrompt, list[dict[str, str]], Callable[[str], Parsed]]:
        q, jp = task[0], task[4]
        return jp, render_pair(jp, q, *positions(task)), lambda t: parse_verdict(t, jp.output_format)

    def fields(task: _Game, out: JudgeOutcome) -> dict[str, Any]:
        q, m, base, game, _ = task
        a, b = positions(task)
        label = out.parsed.value if out.parsed.ok else None
        return {
            "uid": q.uid,
            "category": q.category,
            "subcategory": q.subcategory,
            "model": m,
            "baseline": base,
            "game": game,
            "assistant_a": a.model,
            "assistant_b": b.model,
            "label": label,
            "model_label": (swap_label(label) if game == 1 else label) if label else None,
        }

    report.judged = await run_judgments(
        judge, tasks, prepare, fields, lambda t, error: PairwiseFailure(t[0].uid, t[1], t[3], error),
        log=log, report=report, provenance=provenance, cache=cache, concurrency=concurrency, progress=progress,
    )
    report.elapsed_s = time.perf_counter() - t0
    return report


def judge_pairwise(
    questions: Iterable[Question],
    answers: Mapping[str, Mapping[str, Answer]],
    models: Sequence[str],
    judge: JudgeSettings,
    out_path: str | os.PathLike[str],
    **kwargs: Any,
) -> PairwiseReport:
    """Judge every model against the baseline on every question, in both orders.

    Parameters:
        questions: the questions (their category picks baseline and prompt when these are
            mappings).
        answers: {model: {uid: Answer}} (e.g. :func:`~openarena.judging.answers.read_answers`),
            holding the models' and the baseline's answers.
        models: the models to judge (the baseline itself is skipped).
        judge: JudgeSettings (judge model, temperature, seed, ...).
        out_path: the judgment JSONL file (appended; existing games are skipped).
        baseline: a model name, or {category: name} with '*' as default (Arena-Hard v2.0:
            o3-mini for hard prompts, gemini-2.0-flash for creative writing).
        prompt: a prompt name / JudgePrompt, or {category: prompt} (default 'arena-hard').
        both_orders: judge game 2 with the positions swapped (default true).
        concurrency: games in flight at once; cache: a ResponseCache or None; progress:
            ``progress(done, total)``; fsync: flush each record to disk.
    Returns: PairwiseReport.
    Raises: DataError for a non-pairwise prompt or a category without baseline/prompt;
        KeyboardInterrupt passes through with the finished games on disk.
    """
    return asyncio.run(ajudge_pairwise(questions, answers, models, judge, out_path, **kwargs))


def load_judgments(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], baseline: str | None = None) -> list[dict[str, Any]]:
    """Pairwise game records from judgment files (ours, one record per game) or arena-hard-auto's
    (one record per question with ``games``: game 0 = baseline as A, game 1 swapped).

    Parameters: paths, files or folders of ``*.jsonl``; baseline, the baseline name for
    arena-hard files (they do not store it).
    Returns: list of game records (uid, category, model, baseline, game 1|2, label from A's view
    or None, status, judge {model, ...}).
    Raises: DataError for a malformed record, or an arena-hard file without ``baseline``.
    """
    out: list[dict[str, Any]] = []
    for f in jsonl_files(paths):
        for i, rec in enumerate(read_jsonl(f, tolerate_torn_tail=True)):
            if "games" in rec:
                if baseline is None:
                    raise DataError("arena-hard judgment files do not name the baseline", str(f), i, "games", "--baseline MODEL")
                if "model" not in rec:
                    raise DataError("not a pairwise judgment record (no 'model')", str(f), i, "model", "arena-hard judgment records")
                games = rec["games"] or []
                if not isinstance(games, list) or not all(g is None or isinstance(g, Mapping) for g in games):
                    raise DataError("games is not a list of game objects", str(f), i, "games", '[{"score": "A>B", ...}, ...]')
                judge_name = rec.get("judge") if isinstance(rec.get("judge"), str) else f.parent.name
                for g, game in enumerate(games):
                    label = normalize_label((game or {}).get("score"))
                    out.append({
                        "uid": str(rec.get("uid", rec.get("question_id"))),
                        "category": rec.get("category", ""),
                        "model": rec["model"],
                        "baseline": baseline,
                        "game": g + 1,
                        "label": label,
                        "status": "ok" if label else "missing",
                        "judge": {"model": judge_name},
                    })
                continue
            for key in ("uid", "model", "baseline", "game", "status"):
                if key not in rec:
                    raise DataError(f"not a pairwise judgment record (no {key!r})", str(f), i, key, "records written by openarena judge run")
            out.append(rec)
    return out


def judgments_to_battles(
    records: Iterable[Mapping[str, Any]],
    *,
    much_better_weight: int = MUCH_BETTER_WEIGHT,
    drop_incomplete: bool = True,
    source: str = "",
    rule: str = "arena-hard",
) -> tuple[BattleTable, dict[str, Any]]:
    """Battle rows from pairwise game records.

    Parameters: records (see :func:`load_judgments`); much_better_weight, rows per A>>B / B>>A
    verdict (3 as Arena-Hard; arena-hard rule only); drop_incomplete, leave out a (judge,
    model, question) whose two games are not both parsed (arena-hard v2); when false, every
    parsed game counts (v0.1; the fastchat rule always needs both games); rule, one of
    :data:`PAIR_RULES`: ``arena-hard`` (game by game) or ``fastchat`` (one battle per question:
    the model wins or loses only when both orders agree, otherwise a tie).
    Returns: (BattleTable with columns question_id, model_a (= baseline), model_b (= model),
    winner, category, game (0 for a fastchat battle), judge, label, model_label; info
    {'games', 'parsed_games', 'questions', 'dropped_questions', 'rows', 'rule',
    'much_better' (whether any verdict was "much better", i.e. whether the weight applied)}).
    Raises: DataError when no game is usable or the rule is unknown.
    """
    if rule not in PAIR_RULES:
        raise DataError(f"unknown pairwise rule {rule!r}", field="rule", expected=" or ".join(PAIR_RULES))
    groups: dict[tuple, dict[int, Mapping[str, Any]]] = {}
    for r in records:
        judge = r.get("judge", {}).get("model", "") if isinstance(r.get("judge"), Mapping) else str(r.get("judge", ""))
        groups.setdefault((judge, r["model"], r["baseline"], str(r["uid"])), {})[int(r["game"])] = r
    rows: list[dict[str, Any]] = []
    info: dict[str, Any] = {"games": 0, "parsed_games": 0, "questions": len(groups), "dropped_questions": 0, "rows": 0,
                            "rule": rule, "much_better": False}
    for (judge, model, base, uid), games in groups.items():
        info["games"] += len(games)
        parsed = {g: r for g, r in games.items() if r.get("label") in LABELS}
        info["parsed_games"] += len(parsed)
        if (drop_incomplete or rule == "fastchat") and (len(parsed) < len(games) or len(parsed) < 2):
            info["dropped_questions"] += 1
            continue
        if rule == "fastchat":
            signs = {(label_outcome(swap_label(r["label"]) if g == 1 else r["label"], 1)[0]) for g, r in parsed.items()}
            s_ = signs.pop() if len(signs) == 1 else 0.5  # agreement of both orders, else a tie
            first = min(parsed.values(), key=lambda r: int(r["game"]))
            rows.append({"question_id": uid, "model_a": base, "model_b": model,
                         "winner": "model_b" if s_ == 1.0 else "model_a" if s_ == 0.0 else "tie",
                         "category": first.get("category") or "", "game": 0, "judge": judge,
                         "label": "/".join(parsed[g]["label"] for g in sorted(parsed)), "model_label": ""})
            continue
        for g, r in sorted(parsed.items()):
            label = r["label"]
            model_label = swap_label(label) if g == 1 else label  # the model's view, model as A
            score, weight = label_outcome(model_label, much_better_weight)
            info["much_better"] = info["much_better"] or ">>" in label
            winner = "model_b" if score == 1.0 else "model_a" if score == 0.0 else "tie"
            row = {"question_id": uid, "model_a": base, "model_b": model, "winner": winner,
                   "category": r.get("category") or "", "game": g, "judge": judge, "label": label,
                   "model_label": model_label}
            rows.extend([row] * weight)
    if not rows:
        raise DataError("no usable judgment: every game is unparseable or incomplete", source,
                        expected="games with a verdict in both orders")
    info["rows"] = len(rows)
    frame = pd.DataFrame(rows)
    return BattleTable(frame, source), info
