"""One model's answer to one question, as stored in an answer file: :class:`Answer`, its
style metadata (:func:`answer_metadata`) and the parser of a record in either layout
(:func:`parse_answer_record`: arena-hard ``uid, model, messages`` or FastChat ``question_id,
model_id, choices[0].turns``).

Shared by :mod:`openarena.judging.answers` (generating and reading answer files) and
:mod:`openarena.judging.questions` (reference answers), so that neither imports the other's
module for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from openarena.errors import DataError
from openarena.text import message_text

__all__ = ["METADATA_ENCODING", "Answer", "answer_metadata", "parse_answer_record"]

#: Tokenizer of ``metadata.token_len``: arena-hard v2 gen_answer.py uses
#: tiktoken.encoding_for_model("gpt-4o") = o200k_base.
METADATA_ENCODING = "o200k_base"


@dataclass(frozen=True)
class Answer:
    """One model's answer to one question.

    Attributes: uid; model; turns, the assistant messages in order; metadata, the style
    features (arena-hard v2 layout) when known, else {}; record, the raw record.
    """

    uid: str
    model: str
    turns: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def text(self) -> str:
        """The assistant turns joined with newlines."""
        return "\n".join(self.turns)

    def style(self, encoding: str = METADATA_ENCODING) -> dict[str, int]:
        """Style counts {tokens, headers, lists, bold}: from ``metadata`` when it has them
        (token_len and the count dicts, summed), else computed with
        :func:`openarena.data.style.answer_style`."""
        m = self.metadata
        if all(k in m for k in ("token_len", "header_count", "list_count", "bold_count")):
            def total(v: Any) -> int:
                return int(sum(v.values())) if isinstance(v, dict) else int(v)

            return {"tokens": int(m["token_len"]), "headers": total(m["header_count"]),
                    "lists": total(m["list_count"]), "bold": total(m["bold_count"])}
        s = answer_metadata(self.turns, encoding)
        return {"tokens": s["token_len"], "headers": sum(s["header_count"].values()),
                "lists": sum(s["list_count"].values()), "bold": sum(s["bold_count"].values())}


def answer_metadata(turns: str | Sequence[str], encoding: str = METADATA_ENCODING) -> dict[str, Any]:
    """Arena-hard v2 ``metadata`` of an answer: ``token_len`` (tokens of the turns, summed),
    ``header_count`` {h1..h6}, ``list_count`` {ordered, unordered}, ``bold_count`` {'**', '__'}.

    Computed by :func:`openarena.data.style.answer_style` (FastChat's definition, shared with
    the ratings engine); encoding defaults to o200k_base as arena-hard v2 does.
    """
    from openarena.data.style import answer_style

    s = answer_style(turns if isinstance(turns, str) else list(turns), encoding)
    return {"token_len": s["tokens"], "header_count": s["header_count"],
            "list_count": s["list_count"], "bold_count": s["bold_count"]}


def parse_answer_record(rec: dict[str, Any], source: str = "", row: int = 0) -> Answer:
    """An Answer from an arena-hard record (``uid, model, messages``) or a FastChat record
    (``question_id, model_id, choices[0].turns``).

    Raises: DataError naming the row and field of a record in neither layout.
    """
    uid = rec.get("uid", rec.get("question_id"))
    if uid is None:
        raise DataError("no question id", source, row, "uid", "uid or question_id")
    model = rec.get("model", rec.get("model_id"))
    if not isinstance(model, str) or not model:
        raise DataError("no model name", source, row, "model", "model or model_id")
    if isinstance(rec.get("messages"), list):
        turns = tuple(message_text(m.get("content")) for m in rec["messages"]
                      if isinstance(m, dict) and m.get("role") == "assistant")
    elif isinstance(rec.get("choices"), list) and rec["choices"] and isinstance(rec["choices"][0], dict):
        raw = rec["choices"][0].get("turns") or []
        turns = tuple(t if isinstance(t, str) else message_text(t.get("content") if isinstance(t, dict) else t) for t in raw)
    else:
        raise DataError("no answer", source, row, "messages", "messages with assistant turns, or choices[0].turns")
    if not turns:
        raise DataError("no assistant turn", source, row, "messages", "at least one assistant message")
    meta = rec.get("metadata") if isinstance(rec.get("metadata"), dict) else {}
    return Answer(str(uid), model, turns, dict(meta), rec)
