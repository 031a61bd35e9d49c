"""Curation of battle rows before any leaderboard: identity leaks, over-repeated prompts, near
duplicates.

Every function returns ``(new_table, FilterStep)``: the step says how many battles were removed
(or flagged) and why, and is also appended to the table's ``steps`` so the leaderboard's
provenance lists it. Nothing is dropped silently.

Sources: FastChat fastchat/serve/monitor/clean_battle_data.py (IDENTITY_WORDS, the leak test)
and fastchat/serve/monitor/deduplication.py (dedup_tag); LMSYS blog "Chatbot Arena: new
models & updates" / the leaderboard's "De-duplicate Top Redundant Queries (top 0.1%)".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from openarena.data.battles import BattleTable, FilterStep
from openarena.data.conversations import message_texts
from openarena.errors import DataError

__all__ = [
    "IDENTITY_WORDS",
    "NearDuplicates",
    "dedup_key",
    "dedup_prompts",
    "identity_leak",
    "near_duplicates",
]

#: FastChat's IDENTITY_WORDS (clean_battle_data.py, 2024), lower-cased: a battle whose text
#: contains one of them (as a substring, case-insensitive) is dropped as a leaked identity.
IDENTITY_WORDS: tuple[str, ...] = (
    "vicuna", "lmsys", "koala", "uc berkeley", "open assistant", "laion", "chatglm", "chatgpt",
    "gpt-4", "openai", "anthropic", "claude", "bard", "palm", "lamda", "google", "gemini", "llama",
    "qianwan", "qwen", "alibaba", "mistral", "zhipu", "keg lab", "01.ai", "ai2", "tülu", "tulu",
    "deepseek", "hermes", "cohere", "dbrx", "databricks",
)


def _with_step(battles: BattleTable, frame: pd.DataFrame, step: FilterStep) -> tuple[BattleTable, FilterStep]:
    return battles.with_frame(frame, step), step


# ============================================================================================
# identity leak


def identity_leak(
    battles: BattleTable,
    words: Sequence[str] = IDENTITY_WORDS,
    *,
    whole_words: bool = False,
    drop: bool = True,
) -> tuple[BattleTable, FilterStep]:
    """Invalidate battles whose prompt or answers name a model or vendor.

    Parameters:
        battles: N rows with conversation_a and conversation_b (lists of {role, content}).
        words: the names to look for (default FastChat's 33 :data:`IDENTITY_WORDS`),
            compared case-insensitively.
        whole_words: False (FastChat) matches substrings, so "palm" also hits "palms" and
            "napalm" and "bard" "bombard"; True requires word boundaries.
        drop: remove the leaked battles (default); False keeps them and adds a boolean column
            ``identity_leak``.
    Returns: (table, FilterStep 'identity_leak'); the step's detail gives the count per word
        (each leaked battle counted once, under the first word of the list it contains, as
        FastChat's count_leak does).
    Raises: DataError if a conversation column is missing.
    Source: FastChat clean_battle_data.py (messages of both sides, user and assistant, lower-
    cased; FastChat concatenates them without a separator, we join them with newlines so no
    match spans two messages).
    """
    frame = battles.frame
    for c in ("conversation_a", "conversation_b"):
        if c not in frame.columns:
            raise DataError(f"identity leak check needs {c}", battles.source, field=c, expected="battles with conversations")
    words = [w.lower() for w in words if w]
    if not words:
        raise DataError("no identity words given", battles.source, field="words", expected="at least one word")
    esc = [re.escape(w) for w in words]
    if whole_words:
        esc = [rf"(?<!\w){e}(?!\w)" for e in esc]
    any_word = re.compile("|".join(esc))
    singles = [re.compile(e) for e in esc]
    hit = np.zeros(len(frame), dtype=bool)
    counts: dict[str, int] = {}
    for i, (a, b) in enumerate(zip(frame["conversation_a"], frame["conversation_b"])):
        text = "\n".join(t for conv in (a, b) for t in message_texts(conv)).lower()
        if any_word.search(text):
            hit[i] = True
            first = next(w for w, r in zip(words, singles) if r.search(text))
            counts[first] = counts.get(first, 0) + 1
    top = ", ".join(f"{w} {n}" for w, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    n_hit = int(hit.sum())
    if drop:
        new = frame.loc[~hit]
        step = FilterStep("identity_leak", n_hit, len(new), f"{n_hit} battles name a model or vendor ({top or 'none'})")
    else:
        new = frame.copy()
        new["identity_leak"] = hit
        step = FilterStep("identity_leak", 0, len(new), f"{n_hit} battles flagged in column identity_leak ({top or 'none'})")
    return _with_step(battles, new, step)


# ============================================================================================
# prompt deduplication (FastChat dedup_tag)


def dedup_key(conv: Any, max_chars: int = 10_000) -> str:
    """FastChat's de-duplication key: every user message of conversation_a followed by a
    newline, concatenated, cut at ``max_chars`` characters (deduplication.py)."""
    return "".join(f"{t}\n" for t in message_texts(conv, "user"))[:max_chars]


def dedup_prompts(
    battles: BattleTable,
    *,
    percentile: float = 0.999,
    seed: int = 42,
    max_chars: int = 10_000,
    drop: bool = False,
) -> tuple[BattleTable, FilterStep]:
    """Down-sample over-repeated prompts exactly as FastChat's dedup_tag.

    The frequency of each distinct prompt key (:func:`dedup_key`) is counted; the cut-off is
    the ``percentile`` quantile of those frequencies (pandas' linear interpolation over the
    unique prompts); every prompt seen more often than the cut-off is flagged ``high_freq`` and
    only ``int(cut-off)`` of its battles, drawn with ``DataFrame.sample(random_state=seed)``,
    stay ``sampled``.

    Parameters: battles (N rows with conversation_a, in source order); percentile, 0.999 = the
    leaderboard's "top 0.1%" (FastChat's script defaults to 0.9999); seed, 42 as FastChat;
    max_chars, key length; drop, remove the battles that are not sampled (default False: only
    flag them, as the public releases do).
    Returns: (table, FilterStep 'dedup') with bool columns ``dedup_high_freq`` and
        ``dedup_sampled`` (the schema's dedup_sampled, used by ``category_mask(.., 'dedup')``).
    Raises: DataError if conversation_a is missing or percentile is not in (0, 1].
    Source: FastChat fastchat/serve/monitor/deduplication.py.
    """
    frame = battles.frame
    if "conversation_a" not in frame.columns:
        raise DataError("deduplication needs conversation_a", battles.source, field="conversation_a", expected="battles with conversations")
    if not 0 < percentile <= 1:
        raise DataError(f"percentile {percentile} out of range", battles.source, field="percentile", expected="a number in (0, 1]")
    n = len(frame)
    keys = pd.Series([dedup_key(c, max_chars) for c in frame["conversation_a"]], index=pd.RangeIndex(n), dtype=object)
    df = pd.DataFrame({"post_process_conv": keys})
    prompt_counts = df["post_process_conv"].value_counts()
    cutoff = float(prompt_counts.quantile(percentile))
    high_frequency = prompt_counts[prompt_counts > cutoff].index
    high = np.zeros(n, dtype=bool)
    sampled = np.ones(n, dtype=bool)
    groups = df.groupby("post_process_conv")
    for prompt in high_frequency:
        g = groups.get_group(prompt)
        keep = g.sample(n=int(cutoff), random_state=seed).index
        high[g.index] = True
        sampled[g.index] = False
        sampled[keep] = True
    n_high = int(high.sum())
    n_unsampled = int((~sampled).sum())
    detail = (
        f"cut-off {cutoff:g} battles per prompt ({percentile:.4%} quantile over {len(prompt_counts)} distinct prompts); "
        f"{len(high_frequency)} prompts above it cover {n_high} battles, {n_unsampled} of them not sampled"
    )
    new = frame.copy()
    new["dedup_high_freq"] = high
    new["dedup_sampled"] = sampled
    if drop:
        new = new.loc[sampled]
        step = FilterStep("dedup", n_unsampled, len(new), detail)
    else:
        step = FilterStep("dedup", 0, n, detail + " (flagged in dedup_sampled, not removed)")
    return _with_step(battles, new, step)


# ============================================================================================
# near duplicates (MinHash)


@dataclass(frozen=True)
class NearDuplicates:
    """Near-duplicate prompt clusters: ``clusters`` DataFrame (cluster, key, battles, example),
    one row per distinct prompt in a cluster of >= 2 distinct prompts; ``n_clusters``;
    ``n_battles`` in those clusters; ``threshold``, ``num_perm``, ``shingle`` used."""

    clusters: pd.DataFrame
    n_clusters: int
    n_battles: int
    threshold: float
    num_perm: int
    shingle: str


def _shingles(text: str, size: int, kind: str) -> set[str]:
    text = " ".join(text.lower().split())
    if kind == "word":
        toks = text.split(" ")
        if len(toks) <= size:
            return {text} if text else set()
        return {" ".join(toks[i : i + size]) for i in range(len(toks) - size + 1)}
    if len(text) <= size:
        return {text} if text else set()
    return {text[i : i + size] for i in range(len(text) - size + 1)}


def near_duplicates(
    battles: BattleTable,
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    shingle: str = "char",
    shingle_size: int = 5,
    seed: int = 1,
    max_chars: int = 10_000,
    verify: bool = True,
) -> tuple[BattleTable, FilterStep, NearDuplicates]:
    """Report prompts that are near (not exact) duplicates of each other, by MinHash LSH.

    Parameters:
        battles: N rows with conversation_a; prompts are :func:`dedup_key` keys (exact copies
            are one prompt here: :func:`dedup_prompts` handles those).
        threshold: Jaccard similarity of the shingle sets above which two prompts are near
            duplicates (LSH band layout chosen by datasketch for this threshold).
        num_perm: MinHash permutations; shingle 'char' (character n-grams, works for any
            script) or 'word' (word n-grams); shingle_size n; seed of the hash permutations.
        verify: keep only candidate pairs whose exact Jaccard >= threshold (removes LSH
            false positives).
    Returns: (table with int column ``near_dup_cluster``, -1 outside any cluster; FilterStep
        'near_duplicates' with removed 0 and the counts; NearDuplicates report). Nothing is
        removed: near duplicates are legitimate votes, reported for inspection.
    Raises: DataError if conversation_a is missing or the parameters are out of range.
    Source: Broder (1997) MinHash; datasketch MinHashLSH.
    """
    from datasketch import MinHash, MinHashLSH

    frame = battles.frame
    if "conversation_a" not in frame.columns:
        raise DataError("near-duplicate search needs conversation_a", battles.source, field="conversation_a")
    if not 0 < threshold <= 1 or shingle not in ("char", "word") or shingle_size < 1 or num_perm < 16:
        raise DataError("bad near-duplicate parameters", battles.source, field="threshold", expected="0 < threshold <= 1, shingle 'char'|'word', shingle_size >= 1, num_perm >= 16")
    keys = [dedup_key(c, max_chars) for c in frame["conversation_a"]]
    codes, uniq = pd.factorize(pd.Series(keys, dtype=object))
    sets = [_shingles(k, shingle_size, shingle) for k in uniq]
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    hashes = []
    for j, s in enumerate(sets):
        m = MinHash(num_perm=num_perm, seed=seed)
        if s:
            m.update_batch([x.encode("utf-8") for x in s])
            lsh.insert(j, m)
        hashes.append(m)
    parent = list(range(len(uniq)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for j, s in enumerate(sets):
        if not s:
            continue
        for other in lsh.query(hashes[j]):
            if other <= j:
                continue
            if verify:
                inter = len(s & sets[other])
                if inter / (len(s) + len(sets[other]) - inter) < threshold:
                    continue
            ra, rb = find(j), find(other)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(j) for j in range(len(uniq))], dtype=np.int64)
    size = np.bincount(roots, minlength=len(uniq))
    in_cluster = size[roots] >= 2
    cluster_ids = np.full(len(uniq), -1, dtype=np.int64)
    root_to_id = {r: k for k, r in enumerate(sorted(set(roots[in_cluster].tolist())))}
    for j in np.flatnonzero(in_cluster):
        cluster_ids[j] = root_to_id[roots[j]]
    per_battle = cluster_ids[codes]
    battles_per_key = np.bincount(codes, minlength=len(uniq))
    rows = [
        {"cluster": int(cluster_ids[j]), "key": uniq[j], "battles": int(battles_per_key[j]), "example": str(uniq[j])[:120]}
        for j in np.flatnonzero(in_cluster)
    ]
    report = NearDuplicates(
        pd.DataFrame(rows, columns=["cluster", "key", "battles", "example"]).sort_values(["cluster", "battles"], ascending=[True, False], ignore_index=True),
        len(root_to_id),
        int((per_battle >= 0).sum()),
        threshold,
        num_perm,
        f"{shingle} {shingle_size}-grams",
    )
    new = frame.copy()
    new["near_dup_cluster"] = per_battle
    step = FilterStep(
        "near_duplicates",
        0,
        len(new),
        f"{report.n_clusters} clusters of near-duplicate prompts (MinHash, Jaccard >= {threshold}, {report.shingle}) cover {report.n_battles} battles; flagged in near_dup_cluster, not removed",
    )
    return battles.with_frame(new, step), step, report
