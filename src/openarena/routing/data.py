"""Router training and evaluation data as one table: prompts x models -> quality.

:class:`PromptScores` holds, per prompt, each model's quality on it (1/0 correctness for MMLU
and GSM8K, a judge's 1-10 grade for MT-Bench and arena-bench-v1, NaN where a model was not
scored). A router learns from it which prompts need the strong model; the benchmark routes
between two of its models.

Readers (all offline, from the files as published):

- RouteLLM's evaluation files (lm-sys/RouteLLM, routellm/evals): ``mmlu/responses/*.csv`` (a
  folder, 57 subjects, 14,042 prompts), ``gsm8k/gsm8k_responses.csv`` (1,319), both with one
  boolean column per model; ``mt_bench/judgements.jsonl`` with ``question.jsonl`` beside it (80
  questions x 2 turns, GPT-4 grades; a question's quality is the mean grade of its turns, its
  prompt the first turn, as RouteLLM routes on the first turn). Contaminated prompts (RouteLLM's
  ``contaminated_prompts.jsonl`` beside the data: prompts that overlap the arena training data)
  are dropped and counted.
- Single-grade judgment folders (arena-hard-auto's arena-bench-v1 ``model_judgment/*.jsonl``
  with ``question.jsonl`` two folders up): one column per judged model.
- Battle tables with prompts (clean_battle, the 55k/140k preference sets, the arena's own
  database) are not prompts x models tables: :mod:`openarena.routing.battles` reads them
  (:class:`~openarena.routing.battles.ArenaBattles`) and turns each battle into a strong-vs-weak
  preference or a comparison of two tiers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from openarena.errors import DataError


@dataclass(frozen=True)
class PromptScores:
    """Per-prompt quality of several models.

    Attributes: prompts, list of n prompt texts; scores, DataFrame (n, n_models) of quality
    (higher is better; NaN = not scored), columns = model names; source; dropped, what was
    removed and why ({'contaminated': k, ...}); kind, 'correctness' | 'grade'.
    """

    prompts: list[str]
    scores: pd.DataFrame
    source: str = ""
    dropped: dict = field(default_factory=dict)
    kind: str = "correctness"

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def models(self) -> list[str]:
        return [str(c) for c in self.scores.columns]

    def pair(self, strong: str, weak: str) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(prompts, q_strong, q_weak) over the prompts where both models are scored.
        Raises: DataError naming a model that is not in the data."""
        for m in (strong, weak):
            if m not in self.scores.columns:
                raise DataError(f"model {m!r} is not scored in this data", self.source, field="model", expected=f"one of {', '.join(self.models)}")
        q = self.scores[[strong, weak]].to_numpy(dtype=float)
        ok = ~np.isnan(q).any(axis=1)
        prompts = [p for p, k in zip(self.prompts, ok) if k]
        return prompts, q[ok, 0], q[ok, 1]

    def subset(self, index: np.ndarray) -> "PromptScores":
        """The rows ``index`` (positions)."""
        index = np.asarray(index)
        return PromptScores([self.prompts[i] for i in index], self.scores.iloc[index].reset_index(drop=True), self.source, dict(self.dropped), self.kind)


def _contaminated(folder: Path) -> set[str]:
    path = folder / "contaminated_prompts.jsonl"
    if not path.exists():
        return set()
    out = set()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                out.add(json.loads(line)["eval_prompt"])
    return out


def _decontaminate(prompts: list[str], scores: pd.DataFrame, bad: set[str], source: str, kind: str, extra: dict | None = None) -> PromptScores:
    keep = np.array([p not in bad for p in prompts], dtype=bool)
    dropped = {"contaminated": int((~keep).sum())}
    dropped.update(extra or {})
    return PromptScores([p for p, k in zip(prompts, keep) if k], scores[keep].reset_index(drop=True), source, dropped, kind)


def _bool_columns(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    cols = [c for c in frame.columns if c != "prompt" and not str(c).endswith("_response")]
    if not cols:
        raise DataError("no model columns", source, expected="prompt plus one True/False column per model")
    out = {}
    for c in cols:
        v = frame[c]
        if v.dtype == bool:
            out[c] = v.astype(float)
            continue
        text = v.astype(str).str.strip().str.lower()
        ok = text.isin(["true", "false", "1", "0", "1.0", "0.0"])
        if not ok.all():
            row = int(np.flatnonzero(~ok.to_numpy())[0])
            raise DataError(f"not a correctness value: {v.iloc[row]!r}", source, row=row, field=str(c), expected="True or False")
        out[c] = text.isin(["true", "1", "1.0"]).astype(float)
    return pd.DataFrame(out)


def read_correctness(path: str | Path) -> PromptScores:
    """RouteLLM-style correctness: a CSV with ``prompt`` and one boolean column per model, or a
    folder of them (MMLU's 57 subject files, concatenated in name order).
    Raises: DataError for a missing path, a file without a prompt column, a non-boolean value."""
    path = Path(path)
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files or not files[0].exists():
        raise DataError("no such file or folder", str(path), expected="a CSV of per-prompt correctness or a folder of them")
    frames = []
    for f in files:
        try:
            t = pd.read_csv(f)
        except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise DataError(f"not a readable CSV ({type(err).__name__})", str(f), expected="a UTF-8 CSV with columns prompt, <model>, <model>, ...") from None
        if "prompt" not in t.columns:
            raise DataError("missing column prompt", str(f), expected="columns prompt, <model>, <model>, ...")
        frames.append(t)
    frame = pd.concat(frames, ignore_index=True)
    scores = _bool_columns(frame, str(path))
    folder = path.parent if path.is_dir() and path.name == "responses" else (path if path.is_dir() else path.parent)
    return _decontaminate(frame["prompt"].astype(str).tolist(), scores, _contaminated(folder), str(path), "correctness")


def read_mt_bench_judgments(path: str | Path) -> PromptScores:
    """MT-Bench single grades (``judgements.jsonl``: question_id, model, score, turn) with the
    questions (``question.jsonl`` beside it); quality = mean grade over the turns, prompt = the
    first turn. Grades outside 1-10 (-1 = unparsed) are left out.
    Raises: DataError for missing files or fields."""
    path = Path(path)
    qpath = path.parent / "question.jsonl"
    if not path.exists() or not qpath.exists():
        raise DataError("no such file (the judgments and question.jsonl beside them)", str(path), expected="MT-Bench judgements.jsonl with question.jsonl")
    rows = pd.read_json(path, lines=True)
    for col in ("question_id", "model", "score"):
        if col not in rows.columns:
            raise DataError(f"missing field {col}", str(path), expected="question_id, model, score[, turn]")
    questions = pd.read_json(qpath, lines=True)
    rows = rows[(rows["score"] >= 1) & (rows["score"] <= 10)]
    table = rows.groupby(["question_id", "model"])["score"].mean().unstack("model")
    first = questions.set_index("question_id")["turns"].map(lambda t: t[0])
    table = table.loc[table.index.intersection(first.index)]
    bad = _contaminated(path.parent)
    second = questions.set_index("question_id")["turns"].map(lambda t: t[1] if len(t) > 1 else "")
    contaminated = {first[q] for q in table.index if first[q] in bad or second[q] in bad}
    return _decontaminate([first[q] for q in table.index], table.reset_index(drop=True), contaminated, str(path), "grade")


def read_single_grades(folder: str | Path) -> PromptScores:
    """A folder of single-grade judgment files (arena-hard-auto's arena-bench-v1
    ``model_judgment/*.jsonl``: question_id, model, score) with the questions in
    ``../question.jsonl`` (``question_id``, ``turns[0].content`` or ``prompt``).
    Raises: DataError for a missing folder or questions file."""
    folder = Path(folder)
    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    qpath = folder.parent / "question.jsonl"
    if not files or not qpath.exists():
        raise DataError("no judgment files or no question.jsonl one folder up", str(folder), expected="a model_judgment folder of JSONL files")
    rows = pd.concat([pd.read_json(f, lines=True) for f in files], ignore_index=True)
    rows = rows[pd.to_numeric(rows["score"], errors="coerce").between(1, 10)]
    table = rows.groupby(["question_id", "model"])["score"].mean().unstack("model")
    q = pd.read_json(qpath, lines=True).set_index("question_id")
    text = q["turns"].map(lambda t: t[0]["content"] if isinstance(t[0], dict) else t[0]) if "turns" in q.columns else q["prompt"]
    table = table.loc[table.index.intersection(text.index)]
    return PromptScores([str(text[i]) for i in table.index], table.reset_index(drop=True), str(folder), {}, "grade")


def read_prompt_scores(path: str | Path) -> PromptScores:
    """Any of the formats above, recognised by name and content.
    Raises: DataError when the path is none of them."""
    path = Path(path)
    if path.is_dir():
        if any(path.glob("*.csv")):
            return read_correctness(path)
        if any(path.glob("*.jsonl")):
            return read_single_grades(path)
        if (path / "responses").is_dir():
            return read_correctness(path / "responses")
    if path.suffix == ".csv":
        return read_correctness(path)
    if path.suffix == ".jsonl" and path.exists():
        head = json.loads(path.open(encoding="utf-8").readline() or "{}")
        if "score" in head and (path.parent / "question.jsonl").exists():
            return read_mt_bench_judgments(path)
    if not path.exists():
        raise DataError("no such file or folder", str(path), expected="a routing data set")
    raise DataError("not a routing data set", str(path), expected="a correctness CSV (or folder of them), MT-Bench judgements.jsonl, or a single-grade judgment folder")


def preference_labels(q_strong: np.ndarray, q_weak: np.ndarray) -> np.ndarray:
    """Pairwise labels from per-prompt quality: 1 where the strong model is better, 0 where the
    weak one is, 0.5 on ties (RouteLLM's conversion of gold labels and judge grades)."""
    return np.where(q_strong > q_weak, 1.0, np.where(q_strong < q_weak, 0.0, 0.5))
