"""Data curation commands: ``openarena tag``, ``curate``, ``voters`` and ``release``.

Each reads a SOURCE like ``openarena leaderboard`` does, and writes a file the next step reads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from openarena.api import is_database_source
from openarena.cli.common import err_console, fail, out_console, progress_bar, response_cache, results_table, user_errors
from openarena.cli.leaderboard import load_battles, report_steps


def _rows(data, source: str, what: str):
    from openarena.data.battles import BattleTable

    if not isinstance(data, BattleTable):
        raise fail(f"{source}: {what} needs one row per battle; this source is aggregated pair counts")
    return data


def tag(
    source: str = typer.Argument(..., help="Battles with conversations (file, registry name, hf://..., db)."),
    output: Path = typer.Option(..., "-o", "--output", help="Tagged battles (.parquet, .jsonl, .json)."),
    taggers: str = typer.Option("coding,multiturn,long_user,no_short,language,no_refusal", "--taggers", help="Comma list: rule taggers (coding, math_rule, multiturn, long_user, no_short, language, no_refusal) and LLM taggers (hard_prompt, if, math, creative_writing, refusal)."),
    registry: Optional[Path] = typer.Option(None, "--registry", help="Model registry YAML (for LLM taggers)."),
    model: Optional[str] = typer.Option(None, "--model", help="Registry model that labels (for LLM taggers), e.g. gpt-4o-mini."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="The response cache of LLM calls (a re-run costs nothing); default .openarena-cache.sqlite next to the output, the file `judge run`/`judge answer` use there."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Ask the labeler again and keep no answer."),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="LLM calls in flight."),
    retag: bool = typer.Option(False, "--retag", help="Recompute with the rule taggers the columns the file's own labels (category_tag, is_code, language) already give; by default those labels are kept, as `leaderboard --categories` does."),
    quiet: bool = typer.Option(False, "-q", "--quiet"),
) -> None:
    """Add category columns (coding, math, hard prompts, instruction following, language, ...).
    Labels the file already carries (FastChat's category_tag and is_code, a language column)
    are kept, exactly as `openarena leaderboard --categories` reads them, unless --retag."""
    from openarena.data.categories import RULE_COLUMNS, categories_from_tags
    from openarena.data.writers import write_battles
    from openarena.judging.taggers import LLM_TAGGERS, run_taggers

    names = [t.strip() for t in taggers.split(",") if t.strip()]
    with user_errors():
        data = _rows(load_battles(source, quiet=quiet), source, "tagging")
        if not retag:
            before = set(data.frame.columns)
            if "category_tag" in before or "is_code" in before:
                data = categories_from_tags(data)
            kept = [t for t in names if t in RULE_COLUMNS and RULE_COLUMNS[t] in data.frame.columns]
            if kept:
                names = [t for t in names if t not in kept]
                err_console.print(
                    "kept the file's own labels for " + ", ".join(f"{t} ({RULE_COLUMNS[t]})" for t in kept)
                    + "; the leaderboard's categories read the same; --retag recomputes them with the rule taggers",
                    highlight=False,
                )
        client = None
        if any(t in LLM_TAGGERS for t in names):
            if registry is None or model is None:
                raise fail("LLM taggers need --registry FILE and --model NAME (an OpenAI-compatible endpoint)")
            from openarena.providers.registry import load_registry

            client = load_registry(registry).get(model)
        rc = response_cache(output.parent, not no_cache, cache) if client is not None else None
        state = {"done": 0}
        try:
            with progress_bar("tagging", 1, enabled=not quiet and client is not None) as advance:

                def progress(done: int, total: int) -> None:
                    advance((done - state["done"]) / max(total, 1))
                    state["done"] = done

                tagged, reports = run_taggers(data, names, client=client, cache=rc, concurrency=concurrency, progress=progress)
        finally:
            if rc is not None:
                rc.close()
        for r in reports:
            err_console.print(r.summary(), highlight=False)
        write_battles(tagged, output)
        cols = [c for c in tagged.frame.columns if c.startswith("category_") or c == "language"]
        t = results_table(f"Tagged {len(tagged):,} battles -> {output}", ("column", "battles in category"))
        for c in cols:
            s = tagged.frame[c]
            t.add_row(c, f"{int(s.fillna(False).astype(bool).sum()):,}" if c != "language" else f"{s.nunique()} languages")
        out_console.print(t)


def curate(
    source: str = typer.Argument(..., help="Battles (file, registry name, hf://..., db)."),
    output: Path = typer.Option(..., "-o", "--output", help="Curated battles (.parquet, .jsonl, .json)."),
    identity_leak: bool = typer.Option(True, "--identity-leak/--no-identity-leak", help="Drop battles whose prompt or answers name a model or vendor."),
    dedup: bool = typer.Option(True, "--dedup/--no-dedup", help="Tag over-repeated prompts (FastChat dedup_tag) and keep the sampled ones."),
    percentile: float = typer.Option(0.999, "--percentile", min=0.0, max=1.0, help="Prompt-frequency percentile above which prompts are down-sampled."),
    near_dup: bool = typer.Option(False, "--near-duplicates", help="Report near-duplicate prompts (MinHash)."),
    threshold: float = typer.Option(0.8, "--threshold", min=0.0, max=1.0, help="MinHash Jaccard similarity threshold for near duplicates, between 0 and 1."),
    quiet: bool = typer.Option(False, "-q", "--quiet"),
) -> None:
    """Curate votes before they are rated: identity leaks, prompt deduplication, near duplicates."""
    from openarena.data import curation
    from openarena.data.writers import write_battles

    with user_errors():
        data = _rows(load_battles(source, quiet=quiet), source, "curation")
        n0 = len(data.steps)
        if identity_leak:
            data, _ = curation.identity_leak(data)
        if dedup:
            data, _ = curation.dedup_prompts(data, percentile=percentile, drop=True)
        if near_dup:
            data, _, report = curation.near_duplicates(data, threshold=threshold)
            err_console.print(f"near duplicates (MinHash, Jaccard >= {report.threshold}): {report.n_clusters:,} clusters covering {report.n_battles:,} battles (column near_dup_cluster)", highlight=False)
        report_steps(data, n0, quiet=False)
        write_battles(data, output)
        err_console.print(f"wrote {len(data):,} battles to {output}", highlight=False)


def voters(
    source: str = typer.Argument(..., help="Battles with a judge (voter id) column."),
    alpha: float = typer.Option(0.05, "--alpha", min=1e-12, max=0.5, help="Family-wise level per voter (0 < alpha <= 0.5)."),
    looks: str = typer.Option("5,10,20,50,100", "--looks", help="Numbers of votes at which each voter is tested."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Per-voter report (CSV)."),
    shift: bool = typer.Option(True, "--shift/--no-shift", help="Also show how the leaderboard moves without the flagged voters."),
    quiet: bool = typer.Option(False, "-q", "--quiet"),
) -> None:
    """Flag anomalous voters (exchangeability p-values, Fisher combination, Bonferroni over looks).

    On the arena's database (``db`` or a database URL) it first prints the vote-integrity table:
    per session and per IP, votes, battles, abandoned ratio, selective-voting p-value (Holm
    across voters), flagged and the reasons votes were not counted, then the vote-through rate
    per model."""
    from openarena.analysis.voters import detect_anomalous_voters, leaderboard_shift

    try:
        look_list = tuple(int(x) for x in looks.split(",") if x.strip())
    except ValueError:
        look_list = ()
    if not look_list or min(look_list) < 1:
        raise fail(f"--looks {looks!r}: expected comma-separated positive vote counts, e.g. 5,10,20")
    with user_errors():
        if is_database_source(source):
            _integrity_tables(source, alpha, output)
            output = output.with_name(output.stem + "_anomalous" + output.suffix) if output is not None else None
        data = _rows(load_battles(source, quiet=quiet), source, "voter analysis")
        report = detect_anomalous_voters(data, alpha=alpha, looks=look_list)
        v = report.voters
        tested = int((v["votes"] >= min(look_list)).sum())  # reached the first look (every voter's last vote is also tested)
        label = "Exchangeability test per voter (column judge; Fisher combination, Bonferroni over looks)"
        if len(v) == 0:
            out_console.print(f"{label}: nothing to test yet (a vote is compared with other voters' votes on the same "
                              "pair of models, and no vote has any)")
        else:
            out_console.print(f"{label}: {len(v):,} voters, {tested:,} tested (at least {min(look_list)} votes), "
                              f"{int(v['flagged'].sum()):,} flagged at alpha={alpha}")
        if output is not None:
            v.to_csv(output, index=False)
            err_console.print(f"wrote {output}", highlight=False)
        flagged = report.flagged
        if flagged:
            t = results_table("Flagged voters", ("judge", "votes", "adjusted p"))
            for r in v[v["flagged"]].sort_values("min_adjusted_p").head(20).itertuples(index=False):
                t.add_row(str(r.judge), str(r.votes), f"{r.min_adjusted_p:.2e}")
            out_console.print(t)
            if shift:
                s = leaderboard_shift(data, flagged, drop_unrated=True).head(10)
                t = results_table("Largest rating changes without the flagged voters", ("model", "before", "after", "delta"))
                for r in s.itertuples(index=False):
                    t.add_row(r.model, f"{r.rating_before:.1f}", f"{r.rating_after:.1f}", f"{r.delta:+.1f}")
                out_console.print(t)


def _integrity_tables(source: str, alpha: float, output: Optional[Path]) -> None:
    """For the arena's database: per voter key (session and IP), votes, battles, abandoned
    ratio, selective-voting p-value (Holm across voters), flagged and why; then the vote-through
    rate per model (what a distributed attacker leaves behind)."""
    import numpy as np

    from openarena.analysis.selective_voting import selective_voting_report, vote_through_rates
    from openarena.storage.db import open_database
    from openarena.storage.integrity import INTEGRITY_CODES, voter_activity

    db = open_database(None if source == "db" else source, create=False, run_migrations=False, checkpoints=False)
    try:
        activity = voter_activity(db)
    finally:
        db.dispose()
    if activity.empty:
        out_console.print("no anonymous battles in the database yet")
        return
    rep = selective_voting_report(activity, alpha=alpha)
    withheld = rep["reasons"].map(lambda r: any(code in r for code in INTEGRITY_CODES))
    rep["flagged"] = withheld | rep["selective"]
    rep = rep.sort_values(["flagged", "selective_p", "votes"], ascending=[False, True, False], na_position="last")
    if output is not None:
        rep.to_csv(output, index=False)
        err_console.print(f"wrote {output}", highlight=False)
    for kind, title in (("session", "Voters (sessions)"), ("ip", "Voters (IP addresses, hashed)")):
        part = rep[rep["kind"] == kind]
        t = results_table(f"{title}: {len(part):,}, {int(part['flagged'].sum()):,} flagged", ("voter", "votes", "battles", "abandoned ratio", "selective p", "Holm p", "flagged", "reason"))
        for r in part.head(30).itertuples(index=False):
            sel = "" if np.isnan(r.selective_p) else f"{r.selective_p:.1e} ({r.selective_model})"
            holm = "" if np.isnan(r.holm_p) else f"{r.holm_p:.1e}"
            why = r.reasons or ("selective voting (offline test)" if r.selective else "")
            t.add_row(r.voter[:12], str(r.votes), str(r.battles), f"{r.abandon_ratio:.2f}", sel, holm, "yes" if r.flagged else "", why)
        out_console.print(t)
    pairs: dict = {}
    for d in activity.loc[activity["kind"] == "session", "pairs"]:
        for k, (s_, v_) in d.items():
            cur = pairs.get(k, (0, 0))
            pairs[k] = (cur[0] + s_, cur[1] + v_)
    rates = vote_through_rates(pairs)
    t = results_table("Vote-through rate per model", ("model", "battles", "voted", "rate", "rate of the others", "p (Fisher, Bonferroni)"), caption="rate: share of the answered anonymous battles that got a vote; re-rolling raises the rate of the model it targets")

    def num(x: float, spec: str) -> str:
        return "-" if x != x else format(x, spec)  # NaN: no other model to compare with

    for r in rates.itertuples(index=False):
        t.add_row(r.model, str(r.shown), str(r.voted), num(r.vote_rate, ".2f"), num(r.rate_without, ".2f"), num(r.p, ".1e"))
    out_console.print(t)


def release(
    source: str = typer.Argument(..., help="Battles to publish (file, db, ...)."),
    out_dir: Path = typer.Option(..., "--out-dir", help="Folder for the Parquet file and its data card."),
    salt_env: str = typer.Option("OPENARENA_RELEASE_SALT", "--salt-env", help="Environment variable holding the secret salt for voter ids."),
    name: str = typer.Option("openarena-battles", "--name", help="Dataset name."),
    license: str = typer.Option("CC-BY-4.0", "--license", help="Licence stated in the data card."),
    scrub: bool = typer.Option(True, "--scrub/--no-scrub", help="Remove PII (e-mails, phones, keys, cards, ...) from the text."),
    images: Optional[Path] = typer.Option(None, "--images", help="Also copy the vision arena's images from this image folder (openarena serve --image-dir) to OUT_DIR/images. Default: the release lists image SHA-256 hashes only, never users' images."),
    quiet: bool = typer.Option(False, "-q", "--quiet"),
) -> None:
    """Export a public release in the arena-human-preference schema with a data card (image
    hashes, not images, unless --images is given)."""
    from openarena.data.release import export_release

    salt = os.environ.get(salt_env)
    if not salt:
        raise fail(f"set {salt_env} to a secret salt (voter ids are published as HMAC-SHA256 hashes with it)")
    with user_errors():
        data = _rows(load_battles(source, quiet=quiet), source, "a release")
        getter = None
        if images is not None:
            if not images.is_dir():
                raise fail(f"--images {images}: no such folder (the arena's image folder, openarena serve --image-dir)")
            from openarena.storage.images import ImageStore

            getter = ImageStore(images).get
        result = export_release(data, out_dir, salt=salt, name=name, license=license, scrub=scrub, images=getter)
        pii = ", ".join(f"{k} {v}" for k, v in result.pii.items() if v) or "none found"
        out_console.print(f"wrote {result.rows:,} battles to {result.parquet} and the data card {result.card}; dates {result.first_date} .. {result.last_date}; PII removed: {pii}")
