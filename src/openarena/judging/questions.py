"""Question sets of the automatic benchmarks: Arena-Hard-Auto v0.1 (500 prompts), v2.0 (750:
500 hard prompts + 250 creative writing), MT-Bench (80 two-turn questions, with GPT-4
reference answers for math, reasoning and coding) and any JSON-lines file of prompts.

Sources (the files as their authors publish them; nothing is converted on disk):

- Arena-Hard-Auto: the Hugging Face dataset ``lmarena-ai/arena-hard-auto``, files
  ``data/arena-hard-v0.1/question.jsonl`` and ``data/arena-hard-v2.0/question.jsonl`` (the same
  files as in github.com/lmarena/arena-hard-auto). Records: ``uid, category, cluster, prompt``
  (v0.1) and ``uid, category (hard_prompt | creative_writing), subcategory, prompt`` (v2.0).
- MT-Bench: the Hugging Face Space ``lmsys/mt-bench``, ``data/mt_bench/question.jsonl`` and
  ``data/mt_bench/reference_answer/gpt-4.jsonl`` (the same files as FastChat's
  ``fastchat/llm_judge/data/mt_bench``). Records: ``question_id, category, turns`` (2 turns);
  reference answers in FastChat's answer format.
- Any JSONL: one prompt per line, the prompt in ``prompt``, ``question``, ``instruction`` or
  ``text`` (a string), or ``turns`` (strings or ``{"content": ...}``); the id in ``uid``,
  ``question_id`` or ``id`` (else the line number); optional ``category``.

:func:`load_questions` takes a path, an ``hf://`` URL, or a benchmark name. A name is looked up
in a local folder first (``local_root``, e.g. a copy of the repositories' data folders), then
downloaded from the hub with ``huggingface_hub`` (cached by it).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openarena.errors import DataError, SourceUnavailable
from openarena.judging.answer_records import parse_answer_record
from openarena.judging.store import read_jsonl

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "Question",
    "QuestionSet",
    "hub_download",
    "load_questions",
    "load_reference_answers",
    "parse_question",
]

#: FastChat's categories that are graded against a reference answer
#: (fastchat/llm_judge/common.py NEED_REF_CATS).
NEED_REF_CATS = ("math", "reasoning", "coding", "arena-hard-200")

#: FastChat's answer temperature per MT-Bench category (fastchat/llm_judge/common.py
#: temperature_config), used by :mod:`openarena.judging.answers` for MT-Bench.
MT_BENCH_TEMPERATURE = {
    "writing": 0.7,
    "roleplay": 0.7,
    "extraction": 0.0,
    "math": 0.0,
    "coding": 0.0,
    "reasoning": 0.0,
    "stem": 0.1,
    "humanities": 0.1,
    "arena-hard-200": 0.0,
}


@dataclass(frozen=True)
class Question:
    """One benchmark question.

    Attributes: uid (str, unique in its set); category; turns, the user messages in order
    (1 for Arena-Hard, 2 for MT-Bench); subcategory and cluster when the source has them;
    reference, reference answers per turn (MT-Bench math/reasoning/coding) or None.
    """

    uid: str
    category: str
    turns: tuple[str, ...]
    subcategory: str | None = None
    cluster: str | None = None
    reference: tuple[str, ...] | None = None

    @property
    def prompt(self) -> str:
        """The first user message."""
        return self.turns[0]

    def with_reference(self, reference: Sequence[str] | None) -> Question:
        """A copy with ``reference`` answers (one per turn)."""
        return Question(self.uid, self.category, self.turns, self.subcategory, self.cluster,
                        tuple(reference) if reference is not None else None)


@dataclass
class QuestionSet:
    """The questions of one benchmark, in file order.

    Attributes: name (benchmark name or file stem); questions; source (file or hub path).
    """

    name: str
    questions: list[Question]
    source: str = ""
    _index: dict[str, Question] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for i, q in enumerate(self.questions):
            if q.uid in self._index:
                raise DataError(f"duplicate question id {q.uid!r}", self.source, i, "uid", "unique ids")
            self._index[q.uid] = q

    def __len__(self) -> int:
        return len(self.questions)

    def __iter__(self) -> Iterator[Question]:
        return iter(self.questions)

    def __contains__(self, uid: object) -> bool:
        return uid in self._index

    def get(self, uid: str) -> Question:
        """The question with id ``uid``. Raises: DataError if absent."""
        try:
            return self._index[uid]
        except KeyError:
            raise DataError(f"no question {uid!r}", self.source, field="uid", expected="an id of this set") from None

    def categories(self) -> Counter:
        """Number of questions per category."""
        return Counter(q.category for q in self.questions)

    def subset(self, n: int | None = None, categories: Sequence[str] | None = None) -> QuestionSet:
        """The first ``n`` questions (of the given categories): for trial runs."""
        qs = [q for q in self.questions if not categories or q.category in categories]
        return QuestionSet(self.name, qs[:n] if n else qs, self.source)


@dataclass(frozen=True)
class Benchmark:
    """A named question set and where to find it.

    Attributes: name; hub (repo_id, repo_type, filename); local, candidate paths relative to a
    local root (the repository layout, and the layout of OpenArena's shared data folder);
    n_questions, the expected size (checked after loading); reference_hub / reference_local,
    where the reference answers are (MT-Bench); baseline, the default baseline model per
    category ('*' = any); prompt, the default judge prompt per category ('*' = any).
    """

    name: str
    hub: tuple[str, str, str]
    local: tuple[str, ...]
    n_questions: int
    reference_hub: tuple[str, str, str] | None = None
    reference_local: tuple[str, ...] = ()
    baseline: dict[str, str] = field(default_factory=dict)
    prompt: dict[str, str] = field(default_factory=dict)


BENCHMARKS: dict[str, Benchmark] = {
    "arena-hard-v0.1": Benchmark(
        "arena-hard-v0.1",
        ("lmarena-ai/arena-hard-auto", "dataset", "data/arena-hard-v0.1/question.jsonl"),
        ("data/arena-hard-v0.1/question.jsonl", "arena_hard_auto/data/arena-hard-v0.1/question.jsonl"),
        500,
        baseline={"*": "gpt-4-0314"},
        prompt={"*": "arena-hard"},
    ),
    "arena-hard-v2.0": Benchmark(
        "arena-hard-v2.0",
        ("lmarena-ai/arena-hard-auto", "dataset", "data/arena-hard-v2.0/question.jsonl"),
        ("data/arena-hard-v2.0/question.jsonl", "arena_hard_auto/data/arena-hard-v2.0/question.jsonl"),
        750,
        # arena-hard-auto utils/judge_utils.py JUDGE_SETTINGS
        baseline={"hard_prompt": "o3-mini-2025-01-31", "coding": "o3-mini-2025-01-31",
                  "math": "o3-mini-2025-01-31", "creative_writing": "gemini-2.0-flash-001"},
        prompt={"creative_writing": "arena-hard-creative-writing", "*": "arena-hard"},
    ),
    "mt-bench": Benchmark(
        "mt-bench",
        ("lmsys/mt-bench", "space", "data/mt_bench/question.jsonl"),
        ("data/mt_bench/question.jsonl", "fastchat/llm_judge/data/mt_bench/question.jsonl",
         "fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl"),
        80,
        reference_hub=("lmsys/mt-bench", "space", "data/mt_bench/reference_answer/gpt-4.jsonl"),
        reference_local=("data/mt_bench/reference_answer/gpt-4.jsonl",
                         "fastchat/llm_judge/data/mt_bench/reference_answer/gpt-4.jsonl",
                         "fastchat/fastchat/llm_judge/data/mt_bench/reference_answer/gpt-4.jsonl"),
        prompt={"*": "single-v1"},
    ),
}

_PROMPT_KEYS = ("prompt", "question", "instruction", "text")
_ID_KEYS = ("uid", "question_id", "id")


def _turn_text(turn: Any, source: str, row: int) -> str:
    if isinstance(turn, str):
        return turn
    if isinstance(turn, dict):
        content = turn.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list) and content and isinstance(content[0], str):
            return content[0]  # arena-hard's [text, images] pair
    raise DataError(f"a turn is a {type(turn).__name__}", source, row, "turns", "strings or {'content': str}")


def parse_question(rec: dict[str, Any], source: str = "", row: int = 0, default_category: str = "") -> Question:
    """One question from a record of any supported layout (module docstring).

    Returns: Question. Raises: DataError naming the row and field when no prompt is found or a
    field has the wrong type.
    """
    uid = next((rec[k] for k in _ID_KEYS if rec.get(k) is not None), row)
    if isinstance(uid, float) and uid.is_integer():
        uid = int(uid)
    if isinstance(rec.get("turns"), list) and rec["turns"]:
        turns = tuple(_turn_text(t, source, row) for t in rec["turns"])
    else:
        key = next((k for k in _PROMPT_KEYS if isinstance(rec.get(k), str)), None)
        if key is None:
            raise DataError("no prompt", source, row, "prompt",
                            "a string in prompt, question, instruction or text, or a list in turns")
        turns = (rec[key],)
    if any(not t.strip() for t in turns):
        raise DataError("empty prompt", source, row, "turns", "non-empty text")
    ref = rec.get("reference")
    reference = tuple(str(x) for x in ref) if isinstance(ref, list) and ref else None
    category = rec.get("category")
    return Question(
        uid=str(uid),
        category=str(category) if category not in (None, "") else default_category,
        turns=turns,
        subcategory=str(rec["subcategory"]) if rec.get("subcategory") is not None else None,
        cluster=str(rec["cluster"]) if rec.get("cluster") is not None else None,
        reference=reference,
    )


def _read_questions(path: Path, name: str, source: str | None = None) -> QuestionSet:
    source = source or str(path)
    rows = read_jsonl(path)
    if not rows:
        raise DataError("no questions", source, expected="one question per line")
    qs = [parse_question(r, source, i, default_category=name) for i, r in enumerate(rows)]
    return QuestionSet(name, qs, source)


def hub_download(repo_id: str, filename: str, repo_type: str = "dataset", revision: str | None = None) -> Path:
    """Download one file of a Hugging Face repository (cached by huggingface_hub).

    Parameters: repo_id 'owner/name'; filename, path inside the repo; repo_type 'dataset' |
    'space' | 'model'; revision, a branch, tag or commit (default: main).
    Returns: the local path of the cached file.
    Raises: SourceUnavailable when the hub cannot be reached or the file does not exist.
    """
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id=repo_id, filename=filename, repo_type=repo_type, revision=revision))
    except Exception as e:  # network, auth and 404 errors come in many types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise SourceUnavailable(
            f"cannot fetch {filename} from the Hugging Face {repo_type} {repo_id}: {type(e).__name__}: {first}"
            " (pass a local file or --data-dir)"
        ) from e


def _parse_hf_url(url: str) -> tuple[str, str, str]:
    """hf://datasets/OWNER/NAME/path/file.jsonl -> (repo_id, repo_type, filename)."""
    rest = url[len("hf://"):]
    kind, _, rest = rest.partition("/")
    types = {"datasets": "dataset", "spaces": "space", "models": "model"}
    parts = rest.split("/")
    if kind not in types or len(parts) < 3:
        raise DataError(f"cannot parse {url!r}", url, expected="hf://datasets/OWNER/NAME/path/to/file.jsonl (or hf://spaces/...)")
    return "/".join(parts[:2]), types[kind], "/".join(parts[2:])


def _find_local(root: Path, candidates: Sequence[str]) -> Path | None:
    for rel in candidates:
        p = root / rel
        if p.is_file():
            return p
    return None


def load_questions(
    source: str | os.PathLike[str],
    *,
    local_root: str | os.PathLike[str] | None = None,
    revision: str | None = None,
    with_reference: bool = True,
) -> QuestionSet:
    """Load a question set.

    Parameters:
        source: a benchmark name of :data:`BENCHMARKS` ('arena-hard-v0.1', 'arena-hard-v2.0',
            'mt-bench'), a JSONL file, a folder holding ``question.jsonl``, or an
            ``hf://datasets/OWNER/NAME/path.jsonl`` (or ``hf://spaces/...``) URL.
        local_root: for a benchmark name, a folder searched first (the repositories' layout,
            e.g. ``<root>/data/arena-hard-v0.1/question.jsonl``, or OpenArena's shared data
            layout ``<root>/arena_hard_auto/data/...``); else the hub is used.
        revision: hub revision (branch, tag or commit).
        with_reference: for MT-Bench, attach the GPT-4 reference answers (30 questions:
            math, reasoning, coding) to the questions.
    Returns: QuestionSet (for a benchmark name, its size is checked: 500, 750 or 80).
    Raises: DataError for a missing or malformed file (file, row, field); SourceUnavailable
        when the hub is needed and cannot be reached.
    Source: arena-hard-auto and FastChat llm_judge ``load_questions``.
    """
    text = os.fspath(source)
    bench = BENCHMARKS.get(text)
    if bench is None:
        if text.startswith("hf://"):
            repo_id, repo_type, filename = _parse_hf_url(text)
            path = hub_download(repo_id, filename, repo_type, revision)
            return _read_questions(path, Path(filename).parent.name or Path(filename).stem, text)
        path = Path(text)
        if path.is_dir():
            path = path / "question.jsonl"
        if not path.exists():
            known = ", ".join(BENCHMARKS)
            raise DataError("no such file or benchmark", text, expected=f"a JSONL file, a folder with question.jsonl, or one of: {known}")
        name = path.parent.name if path.name == "question.jsonl" else path.stem
        return _read_questions(path, name)

    local = _find_local(Path(local_root), bench.local) if local_root is not None else None
    if local_root is not None and local is None:
        raise DataError(f"{bench.name} questions not found under {local_root}", str(local_root),
                        expected="one of " + ", ".join(bench.local))
    path = local or hub_download(bench.hub[0], bench.hub[2], bench.hub[1], revision)
    qs = _read_questions(path, bench.name, str(path))
    if len(qs) != bench.n_questions:
        raise DataError(f"{len(qs)} questions, expected {bench.n_questions} for {bench.name}", str(path),
                        expected=f"the published {bench.name} question file")
    if with_reference and (bench.reference_hub or bench.reference_local):
        ref_path = _find_local(Path(local_root), bench.reference_local) if local_root is not None else None
        if ref_path is None:
            ref_path = hub_download(bench.reference_hub[0], bench.reference_hub[2], bench.reference_hub[1], revision)  # type: ignore[index]
        refs = load_reference_answers(ref_path)
        qs = QuestionSet(qs.name, [q.with_reference(refs.get(q.uid, q.reference)) if q.category in NEED_REF_CATS else q
                                   for q in qs.questions], qs.source)
    return qs


def load_reference_answers(path: str | os.PathLike[str]) -> dict[str, tuple[str, ...]]:
    """Reference answers per question id from an answer file (FastChat ``choices[0].turns`` or
    arena-hard ``messages``).

    Returns: {uid: (turn 1 answer, turn 2 answer, ...)}.
    Raises: DataError for a malformed record.
    """
    out: dict[str, tuple[str, ...]] = {}
    for i, rec in enumerate(read_jsonl(path)):
        ans = parse_answer_record(rec, str(path), i)
        out[ans.uid] = ans.turns
    return out
