"""Judge prompt templates, one YAML file each, as published by their authors.

Files in this folder (the text of ``system_prompt`` and ``prompt_template`` is verbatim; each
file's ``source`` names where it comes from):

- ``arena-hard.yaml``: Arena-Hard-Auto's pairwise judge (v0.1, and v2.0 hard prompts), five
  verdict labels ``[[A>>B]]`` ... ``[[B>>A]]``; placeholders ``{question_1}``, ``{answer_1}``
  (assistant A), ``{answer_2}`` (assistant B).
- ``arena-hard-creative-writing.yaml``: Arena-Hard-Auto v2.0's creative-writing judge.
- MT-Bench (FastChat ``judge_prompts.jsonl``): ``single-v1``, ``single-math-v1`` (with a
  reference answer), ``single-v1-multi-turn``, ``single-math-v1-multi-turn`` (output
  ``[[rating]]``, 1-10), and the pairwise ``pair-v2``, ``pair-math-v1``, ``pair-v2-multi-turn``,
  ``pair-math-v1-multi-turn`` (output ``[[A]]``, ``[[B]]`` or ``[[C]]`` for a tie).

A template is rendered with ``str.format`` on named fields; :meth:`JudgePrompt.render` returns
the chat messages (system + user) sent to the judge. Any other YAML file with the same keys
can be passed by path.
"""

from __future__ import annotations

import hashlib
import os
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from openarena.errors import DataError

__all__ = ["JudgePrompt", "PROMPT_DIR", "get_prompt", "list_prompts"]

PROMPT_DIR = Path(__file__).resolve().parent
_TYPES = ("pairwise", "single")
_FORMATS = ("[[A>>B]]", "[[A]]", "[[rating]]")


@dataclass(frozen=True)
class JudgePrompt:
    """A judge prompt template.

    Attributes: name; kind, 'pairwise' or 'single'; output_format, '[[A>>B]]' (five Arena-Hard
    labels), '[[A]]' (FastChat's A / B / C=tie) or '[[rating]]' (a 1-10 score); multi_turn;
    reference, whether the template expects reference answers; category; temperature and
    max_tokens, the judge settings its authors used; system_prompt; template; source;
    fields, the placeholder names of the template; sha256, hash of system prompt + template
    (recorded with every judgment, so that a changed prompt is visible).
    """

    name: str
    kind: str
    output_format: str
    multi_turn: bool
    reference: bool
    category: str
    temperature: float
    max_tokens: int
    system_prompt: str
    template: str
    source: str
    path: str = ""

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f for _, f, _, _ in string.Formatter().parse(self.template) if f)

    @property
    def sha256(self) -> str:
        return hashlib.sha256((self.system_prompt + "\x00" + self.template).encode("utf-8")).hexdigest()

    def render(self, **values: str) -> list[dict[str, str]]:
        """The messages for the judge: ``[{"role": "system", ...}, {"role": "user", ...}]``.

        Parameters: values for every placeholder (extra values are ignored).
        Raises: DataError naming the first missing placeholder.
        """
        missing = [f for f in self.fields if f not in values]
        if missing:
            raise DataError(f"prompt {self.name!r} needs {missing[0]!r}", self.path, field=missing[0],
                            expected="values for " + ", ".join(self.fields))
        user = self.template.format(**values)
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": user}]

    def describe(self) -> dict[str, Any]:
        """Provenance of the prompt: name, sha256, source."""
        return {"name": self.name, "sha256": self.sha256, "source": self.source}


def _load(path: Path) -> JudgePrompt:
    source = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("prompt file not found", source) from None
    except yaml.YAMLError as e:
        raise DataError(f"invalid YAML: {e}", source) from None
    if not isinstance(data, dict):
        raise DataError("not a mapping", source, expected="a YAML mapping with system_prompt and prompt_template")
    for key in ("name", "type", "output_format", "system_prompt", "prompt_template"):
        if not isinstance(data.get(key), str):
            raise DataError("missing or not a string", source, field=key, expected="a string")
    if data["type"] not in _TYPES:
        raise DataError(f"unknown type {data['type']!r}", source, field="type", expected=" or ".join(_TYPES))
    if data["output_format"] not in _FORMATS:
        raise DataError(f"unknown output_format {data['output_format']!r}", source, field="output_format", expected=", ".join(_FORMATS))
    return JudgePrompt(
        name=data["name"],
        kind=data["type"],
        output_format=data["output_format"],
        multi_turn=bool(data.get("multi_turn", False)),
        reference=bool(data.get("reference", False)),
        category=str(data.get("category", "general")),
        temperature=float(data.get("temperature", 0.0)),
        max_tokens=int(data.get("max_tokens", 2048)),
        system_prompt=data["system_prompt"],
        template=data["prompt_template"],
        source=str(data.get("source", "")),
        path=source,
    )


@lru_cache(maxsize=64)
def _cached(path: str) -> JudgePrompt:
    return _load(Path(path))


def list_prompts() -> list[str]:
    """Names of the bundled prompts, sorted."""
    return sorted(p.stem for p in PROMPT_DIR.glob("*.yaml"))


def get_prompt(name: str | os.PathLike[str] | JudgePrompt) -> JudgePrompt:
    """A bundled prompt by name (e.g. 'arena-hard', 'single-v1') or a YAML file by path.

    Raises: DataError for an unknown name (listing the known ones) or a malformed file.
    """
    if isinstance(name, JudgePrompt):
        return name
    text = os.fspath(name)
    bundled = PROMPT_DIR / f"{text}.yaml"
    if bundled.is_file():
        return _cached(str(bundled))
    path = Path(text)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return _cached(str(path.resolve()))
    raise DataError(f"unknown judge prompt {text!r}", field="prompt", expected="one of " + ", ".join(list_prompts()) + ", or a YAML file")
