"""``openarena trust ...``: the analyses that answer an arena's critics (private variants,
drift, cost-vs-score frontier, price control, audits, provider transparency) and
``openarena snapshot`` / ``openarena verify`` (reproducible leaderboards). Parsing and printing
only; the statistics live in openarena.ratings.simultaneous / weighting and
openarena.analysis.trust."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from openarena.api import is_database_source, read_model_prices
from openarena.cli.common import column_formatter, err_console, fail, format_number, out_console, progress_bar, results_table, user_errors

app = typer.Typer(help="Trust analyses: selection bias of private variants, drift, cost-vs-score frontier, price control, audits, provider shares.", no_args_is_help=True, rich_markup_mode="markdown")


class Out(str, Enum):
    """--format choices of the tabular trust commands."""
    table = "table"
    csv = "csv"
    json = "json"


class Adjust(str, Enum):
    """--adjust choices."""
    holm = "holm"
    bh = "bh"


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        err_console.print(text, highlight=False)


def _write(text: str, output: Path | None, quiet: bool, note: str = "") -> None:
    """``text`` to ``output`` (folders created; 'wrote ...' on stderr) or to stdout."""
    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    _say(quiet, f"wrote {output}{note}")


def _load(source: str, quiet: bool, aliases: list[str] | None = None, **filters):
    from openarena.cli.leaderboard import load_battles, parse_aliases

    return load_battles(source, aliases=parse_aliases(aliases or []), quiet=quiet, **filters)


def _is_registry(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


def _orgs(paths: list[Path]) -> dict[str, str]:
    """Organisation map from metadata tables and/or model registry YAML files."""
    from openarena.analysis.trust.providers import read_org_map

    out: dict[str, str] = {}
    tables = [p for p in paths if not _is_registry(p)]
    if tables:
        out.update(read_org_map(tables))
    for p in paths:
        if _is_registry(p):
            from openarena.providers.registry import load_registry

            out.update({m.name: m.organization for m in load_registry(p) if m.organization})
    return out


def _emit(frame, fmt: Out, output: Optional[Path], quiet: bool, title: str, extra: dict | None = None) -> None:
    """Write ``frame`` as CSV/JSON to ``output`` (or stdout), or print it as a rich table."""
    import json

    if fmt == Out.table and output is None:
        t = results_table(title, frame.columns)
        formats = [column_formatter(frame[c].tolist()) for c in frame.columns]
        for row in frame.itertuples(index=False):
            t.add_row(*(f(v) for f, v in zip(formats, row)))
        out_console.print(t)
        return
    if fmt == Out.json:
        doc = {"rows": json.loads(frame.to_json(orient="records"))}
        doc.update(extra or {})
        text = json.dumps(doc, indent=1, default=str) + "\n"
    else:
        text = frame.to_csv(index=False, float_format="%.10g")
    _write(text, output, quiet)


@app.command("variants")
def variants(
    source: str = typer.Argument(..., help="Battle file, registry name or `db` (as for `openarena leaderboard`)."),
    variants: str = typer.Option(..., "--variants", help="The provider's variants, comma-separated model keys (k >= 2)."),
    released: Optional[str] = typer.Option(None, "--released", help="The variant that was released (default: the best-rated one)."),
    level: float = typer.Option(0.95, "--level", help="Interval coverage 1 - alpha; the adjusted interval uses 1 - alpha/k."),
    released_at: Optional[str] = typer.Option(None, "--released-at", help="Release date: votes of the released model from then on are fresh (needs timestamps)."),
    provisional_votes: int = typer.Option(2000, "--provisional-votes", min=1, help="Fresh votes needed before the score is final (LMArena: 2,000)."),
    anchor: Optional[str] = typer.Option(None, "--anchor", help="MODEL=VALUE (as for the leaderboard)."),
    alias: list[str] = typer.Option([], "--alias", help="OLD=NEW model renaming; repeatable."),
    fmt: Out = typer.Option(Out.table, "--format", "-f"),
    output: Optional[Path] = typer.Option(None, "-o", "--output"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Private variants: each variant's rating, its interval, the Bonferroni interval at level
    1 - alpha/k, the expected selection bias of the best of k and the corrected rating."""
    from openarena.analysis.trust.variants import variant_report

    if not 0 < level < 1:
        raise fail(f"--level {level}: expected a number between 0 and 1, e.g. 0.95")
    with user_errors():
        data = _load(source, quiet, alias)
        rep = variant_report(data, variants.split(","), released=released, level=level, released_at=released_at, provisional_votes=provisional_votes, anchor=anchor)
    summary = {
        "k": rep.k,
        "level": rep.level,
        "released": rep.released,
        "selection_bias": rep.selection_bias,
        "selection_bias_if_equal": rep.selection_bias_equal,
        "corrected_rating": rep.corrected_rating,
        "fresh_votes": rep.fresh_votes,
        "provisional": rep.provisional,
        "provisional_votes": rep.provisional_votes,
    }
    _emit(rep.table, fmt, output, quiet, f"{rep.k} variants; intervals at {level:g} and Bonferroni {1 - (1 - level) / rep.k:.4g}", {"summary": summary})
    status = f"provisional ({rep.fresh_votes:,.0f} of {rep.provisional_votes:,} fresh votes)" if rep.provisional else f"final ({rep.fresh_votes:,.0f} fresh votes)"
    _say(
        quiet and fmt != Out.table,
        f"released {rep.released}: expected selection bias of the best of {rep.k} +{rep.selection_bias:.1f} points "
        f"(+{rep.selection_bias_equal:.1f} if all variants were equally strong); bias-corrected rating {rep.corrected_rating:.1f}; {status}",
    )


@app.command("drift")
def drift(
    source: str = typer.Argument(..., help="Timestamped battle rows (a tstamp column), a registry name or `db`."),
    window: Optional[str] = typer.Option(None, "--window", help="Window length, e.g. 7d, 12h, 2w."),
    split: Optional[str] = typer.Option(None, "--split", help="Split date(s), comma-separated (default: the median vote time)."),
    alpha: float = typer.Option(0.05, "--alpha", help="Family-wise (holm) or false-discovery (bh) level."),
    adjust: Adjust = typer.Option(Adjust.holm, "--adjust", help="p-value adjustment across models: holm (family-wise) or bh (Benjamini-Hochberg)."),
    models: Optional[str] = typer.Option(None, "--models", help="Models to test, comma-separated (default all)."),
    min_votes: int = typer.Option(50, "--min-votes", min=1, help="A model's window with fewer votes is left out of its test."),
    alias: list[str] = typer.Option([], "--alias", help="OLD=NEW model renaming; repeatable."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the rating-over-time plot with 95% bands here (PNG)."),
    fmt: Out = typer.Option(Out.table, "--format", "-f"),
    output: Optional[Path] = typer.Option(None, "-o", "--output"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Did a model change? Per-window strengths fitted jointly with the other models as the
    reference; delta with its sandwich standard error; p-values adjusted across models."""
    from openarena.analysis.trust.drift import drift_test

    if window and split:
        raise fail("use one of --window and --split")
    with user_errors():
        data = _load(source, quiet, alias)
        targets = [m.strip() for m in models.split(",") if m.strip()] if models else None
        n = len(targets) if targets else len(data.models) if hasattr(data, "models") else 0
        with progress_bar("models", n, enabled=not quiet) as advance:
            res = drift_test(data, window=window, split=split, alpha=alpha, adjustment=adjust.value, models=targets, min_votes=min_votes, progress=advance)
        if plot is not None:
            from openarena.analysis.trust.plots import drift_plot

            drift_plot(res, plot)
            _say(quiet, f"wrote {plot}")
    _emit(res.table, fmt, output, quiet, f"Drift over {len(res.windows)} windows ({'Holm' if res.adjustment == 'holm' else 'Benjamini-Hochberg'}, alpha {alpha:g})")
    _say(quiet or fmt != Out.table, f"{int(res.table['drifted'].sum())} model(s) drifted")


@app.command("history")
def history(
    path: Path = typer.Argument(..., help="A folder of published snapshots (fboulnois lmsys_YYYY.MM.DD.csv: rating, CI, votes)."),
    z: float = typer.Option(3.0, "--z", help="Flag moves beyond this many expected standard deviations."),
    models: Optional[str] = typer.Option(None, "--models", help="Only these models (display names), comma-separated."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="PNG of the published rating paths of --models (alltime.csv works too)."),
    fmt: Out = typer.Option(Out.table, "--format", "-f"),
    output: Optional[Path] = typer.Option(None, "-o", "--output"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Moves of a published cumulative board between snapshots against the closed-form expected
    variation se1 * sqrt(1 - n1/n2) (plus rounding), relative to the board's median move."""
    from openarena.analysis.trust.drift import board_moves, read_board_history

    with user_errors():
        h = read_board_history(str(path))
        if plot is not None:
            from openarena.analysis.trust.plots import history_plot

            if not models:
                raise fail("--plot needs --models")
            history_plot(h, [s.strip() for s in models.split(",")], plot)
            _say(quiet, f"wrote {plot}")
            if h["votes"].isna().all():
                return
        if h["votes"].isna().all():
            raise fail(f"{path}: these snapshots have no votes or intervals; the closed form needs both (use the fboulnois scrapes)")
        m = board_moves(h, z=z)
    if models:
        m = m[m["model"].isin([s.strip() for s in models.split(",")])]
    shown = m if models else m[m["exceeds"]]
    cols = ["model", "date_from", "date_to", "move", "votes_from", "votes_to", "expected_sd", "z", "exceeds"]
    shown = shown.sort_values("z", key=abs, ascending=False)[cols]
    shown = shown.assign(date_from=shown["date_from"].dt.date.astype(str), date_to=shown["date_to"].dt.date.astype(str))
    _emit(shown, fmt, output, quiet, f"Moves beyond {z:g} expected sd ({int(m['exceeds'].sum())} of {len(m)} consecutive-snapshot moves)")


@app.command("frontier")
def frontier(
    leaderboard: Path = typer.Argument(..., help="Ratings: our leaderboard CSV/JSON or the arena's leaderboard-text.json."),
    prices: list[Path] = typer.Option(..., "--prices", help="Price table(s): arena pricing_table.json/.csv, scatterplot-data.json, litellm JSON, CSV model,input_price,output_price, or a model registry YAML; repeatable, the first one listing a model wins."),
    price_weights: str = typer.Option("3:1", "--price-weights", help="Input:output token weights of the blended price."),
    category: str = typer.Option("full", "--category", help="Category of a leaderboard-text.json."),
    fmt: str = typer.Option("csv", "--format", "-f", help="csv, html (interactive, self-contained) or png."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output file (html/png need one)."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """The cost-vs-score Pareto frontier: blended USD per million tokens (log axis) vs rating,
    with intervals; models whose interval reaches the frontier are 'possibly on the frontier'."""
    from openarena.analysis.trust.frontier import build_frontier, frontier_html, frontier_png, parse_weights, read_ratings

    if fmt not in ("csv", "html", "png"):
        raise fail(f"--format {fmt!r}: expected csv, html or png")
    if fmt in ("html", "png") and output is None:
        raise fail(f"--format {fmt} needs -o FILE")
    with user_errors():
        weights = parse_weights(price_weights)
        fr = build_frontier(read_ratings(leaderboard, category), [read_model_prices(p) for p in prices], weights)
        if fmt == "csv":
            text = fr.table.to_csv(index=False, float_format="%.10g")
            if output is None:
                typer.echo(text, nl=False)
            else:
                output.parent.mkdir(parents=True, exist_ok=True)
                output.write_text(text)
        elif fmt == "html":
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(frontier_html(fr))
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            frontier_png(fr, output)
    n_f = int(fr.table["on_frontier"].sum())
    n_p = int((fr.table["status"] == "possibly on the frontier").sum())
    _say(quiet, f"{len(fr.table)} priced models: {n_f} on the frontier, {n_p} possibly on it; {len(fr.unpriced)} without a price" + (f"; wrote {output}" if output else ""))


@app.command("price-control")
def price_control(
    source: str = typer.Argument(..., help="Battle rows (one per vote), a registry name or `db`."),
    prices: list[Path] = typer.Option(..., "--prices", help="Price table(s), as for `trust frontier`."),
    price_weights: str = typer.Option("3:1", "--price-weights"),
    prior: float = typer.Option(1.0, "--prior", min=0.0, help="L2 prior on model strengths (a per-model covariate is only identified with one)."),
    alias: list[str] = typer.Option([], "--alias", help="OLD=NEW model renaming; repeatable."),
    fmt: Out = typer.Option(Out.table, "--format", "-f"),
    output: Optional[Path] = typer.Option(None, "-o", "--output"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Leaderboard controlled for log10 blended price (a per-model covariate of the contextual
    fit), with the coefficient and its interval, next to the plain board's rank."""
    import pandas as pd

    from openarena.analysis.trust.frontier import parse_weights, price_control as run

    with user_errors():
        data = _load(source, quiet, alias)
        if not hasattr(data, "frame"):
            raise fail(f"{source}: price control needs one row per vote; this source is aggregated pair counts")
        table = pd.concat([read_model_prices(p) for p in prices], ignore_index=True)
        lb, plain, excluded = run(data, table, weights=parse_weights(price_weights), prior=prior)
    _report_control(lb, plain, excluded, fmt, output, quiet, prior)


@app.command("audit")
def audit(
    source: str = typer.Argument(..., help="Battle file, registry name or `db`."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the HTML report here."),
    target: Optional[Path] = typer.Option(None, "--target", help="CSV model,share, or a model registry YAML (its sampling weights): the intended share of battles per model (default uniform)."),
    top_share: float = typer.Option(0.01, "--top-share", help="Share of the most active voters examined."),
    alpha: float = typer.Option(0.05, "--alpha", help="Level of the intransitive-triad test (Bonferroni across triads)."),
    alias: list[str] = typer.Option([], "--alias", help="OLD=NEW model renaming; repeatable."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the summary as JSON here."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Audit a vote set: connectivity, significant intransitive triads, position bias, tie
    rates, votes per voter, sampling share vs target, sensitivity to the top voters."""
    import json

    import pandas as pd

    from openarena.analysis.trust.audit import audit_html, audit_votes

    if not 0 < top_share < 1:
        raise fail(f"--top-share {top_share}: expected a share between 0 and 1, e.g. 0.01")
    with user_errors():
        data = _load(source, quiet, alias)
        tgt = None
        if target is not None and _is_registry(target):
            from openarena.providers.registry import load_registry

            tgt = {m.name: float(m.weight) for m in load_registry(target) if m.anonymous}
        elif target is not None:
            t = pd.read_csv(target)
            if not {"model", "share"} <= set(t.columns):
                raise fail(f"{target}: expected columns model,share")
            tgt = dict(zip(t["model"].astype(str), pd.to_numeric(t["share"], errors="coerce").fillna(0.0)))
        res = audit_votes(data, target=tgt, top_share=top_share, alpha=alpha)
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(audit_html(res))
            _say(quiet, f"wrote {output}")
        if json_out is not None:
            json_out.write_text(json.dumps({"summary": res.summary, "notes": res.notes}, indent=1, default=float))
    t = results_table("Vote-set audit", ("check", "value"))
    for k, v in res.summary.items():
        t.add_row(k, format_number(v))
    out_console.print(t)
    for note in res.notes:
        _say(quiet, f"note: {note}")


@app.command("providers")
def providers(
    source: str = typer.Argument(..., help="Battle file, registry name or `db`."),
    orgs: list[Path] = typer.Option(..., "--orgs", help="Organisation tables (key, Organization): e.g. arena_catalog/ (its leaderboard_table_*.csv), alltime.csv, or a model registry YAML; repeatable."),
    public: Optional[Path] = typer.Option(None, "--public", help="A published leaderboard (CSV/JSON with model keys): models absent from it are 'tested privately'."),
    period: str = typer.Option("W", "--period", help="Period of the sampling rate over time: W (weeks) or M (months)."),
    alias: list[str] = typer.Option([], "--alias", help="OLD=NEW model renaming; repeatable."),
    models_out: Optional[Path] = typer.Option(None, "--models-out", help="Also write the per-model table (CSV) here."),
    over_time_out: Optional[Path] = typer.Option(None, "--over-time-out", help="Also write the share per provider and period (CSV) here."),
    fmt: Out = typer.Option(Out.table, "--format", "-f"),
    output: Optional[Path] = typer.Option(None, "-o", "--output"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Per-provider transparency: battles and vote shares per provider and model, sampling rate
    over time, models tested privately, deprecations."""
    from openarena.analysis.trust.frontier import read_ratings
    from openarena.analysis.trust.providers import provider_report

    if period not in ("W", "M", "D"):
        raise fail(f"--period {period!r}: expected W, M or D")
    with user_errors():
        data = _load(source, quiet, alias)
        org_map = _orgs(list(orgs))
        pub = set(read_ratings(public)["model"]) if public is not None else None
        rep = provider_report(data, org_map, public=pub, period=period)
        if models_out is not None:
            rep.models.to_csv(models_out, index=False, float_format="%.10g")
            _say(quiet, f"wrote {models_out}")
        if over_time_out is not None and rep.over_time is not None:
            rep.over_time.to_csv(over_time_out, index=False, float_format="%.10g")
            _say(quiet, f"wrote {over_time_out}")
    _emit(rep.providers, fmt, output, quiet, "Battles per provider")
    unknown = rep.models[rep.models["provider"] == "(unknown)"]["model"].tolist()
    if unknown:
        _say(quiet, f"{len(unknown)} model(s) without an organisation: {', '.join(unknown[:8])}{' ...' if len(unknown) > 8 else ''}")


def _source_identity(source: str, quiet: bool) -> tuple[str | None, str | None]:
    """(path read, sha256) of SOURCE; (None, None) for a database."""
    if is_database_source(source):
        return None, None
    from openarena.analysis.trust.snapshot import sha256_path
    from openarena.data.registry import resolve

    path = resolve(source)
    if isinstance(path, str):  # a hub URL: the reader downloads it; no local bytes to hash
        return path, None
    return str(path), sha256_path(path)


def snapshot(
    source: str = typer.Argument(..., help="Battle file, registry name or `db`."),
    out_dir: Path = typer.Option(..., "-o", "--out-dir", help="Snapshot folder to write (manifest.json, leaderboard.csv)."),
    ci: str = typer.Option("sandwich", "--ci", help="sandwich, bootstrap or none."),
    rounds: int = typer.Option(100, "--rounds", min=1, max=10_000),
    seed: int = typer.Option(0, "--seed", min=0),
    anchor: Optional[str] = typer.Option(None, "--anchor"),
    ties: str = typer.Option("half", "--ties"),
    alias: list[str] = typer.Option([], "--alias"),
    exclude: list[str] = typer.Option([], "--exclude"),
    min_battles: int = typer.Option(0, "--min-battles", min=0),
    anony: bool = typer.Option(False, "--anony"),
    dedup: bool = typer.Option(False, "--dedup"),
    since: Optional[str] = typer.Option(None, "--since"),
    until: Optional[str] = typer.Option(None, "--until"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Write the leaderboard of SOURCE with everything needed to rebuild it (source and its
    sha256, filters, options, version, seed); the votes themselves are not copied."""
    from openarena.analysis.leaderboard import build_leaderboard
    from openarena.analysis.trust.snapshot import write_snapshot
    from openarena.cli.leaderboard import parse_aliases

    read_options = dict(anony=anony, dedup=dedup, since=since, until=until, exclude=list(exclude), min_battles=min_battles, aliases=parse_aliases(alias))
    fit_options = dict(ci=ci, rounds=rounds, seed=seed, anchor=anchor, ties=ties)
    if Path(source).exists():  # a local file or folder: recorded absolute, so verify works from anywhere
        source = str(Path(source).resolve())
    with user_errors():
        path, digest = _source_identity(source, quiet)
        data = _load_with(source, read_options, quiet)
        with progress_bar("bootstrap", rounds if ci == "bootstrap" else 0, enabled=not quiet) as advance:
            lb = build_leaderboard(data, progress=advance, **fit_options)
        manifest = write_snapshot(out_dir, lb, source=source, source_path=path, source_sha256=digest, read_options=read_options, fit_options=fit_options)
    _say(quiet, f"wrote {manifest} and {out_dir / 'leaderboard.csv'} ({len(lb.table)} models; source sha256 {digest or 'n/a (database)'})")


def _load_with(source: str, read_options: dict, quiet: bool):
    from openarena.cli.leaderboard import load_battles

    return load_battles(source, quiet=quiet, **read_options)


def verify(
    snapshot_dir: Path = typer.Argument(..., help="A folder written by `openarena snapshot`."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Re-read the snapshot's source, check its sha256, rebuild the leaderboard and compare
    every rating (exit 1 naming what differs beyond 1e-9 points; exit 0 when identical)."""
    from openarena.analysis.leaderboard import build_leaderboard
    from openarena.analysis.trust.snapshot import compare_tables, read_manifest

    with user_errors():
        manifest, saved = read_manifest(snapshot_dir)
        source = manifest["source"]
        problems = []
        path, digest = _source_identity(source, True)
        if manifest.get("source_sha256") and digest != manifest["source_sha256"]:
            problems.append(f"the votes changed: {path} has sha256 {digest}, the snapshot recorded {manifest['source_sha256']}")
        data = _load_with(source, manifest["read_options"], True)
        lb = build_leaderboard(data, **manifest["fit_options"])
        if manifest.get("data_sha256") and lb.provenance["data_sha256"] != manifest["data_sha256"]:
            problems.append("the filtered pair counts differ from the snapshot's (data_sha256)")
        problems += compare_tables(saved, lb.table)
    from openarena import __version__

    if manifest.get("openarena_version") != __version__:
        _say(quiet, f"note: snapshot made with openarena {manifest.get('openarena_version')}, verified with {__version__}")
    if problems:
        for line in problems[:50]:
            err_console.print(f"differs: {line}", highlight=False)
        if len(problems) > 50:
            err_console.print(f"... and {len(problems) - 50} more", highlight=False)
        raise typer.Exit(1)
    _say(quiet, f"verified: {len(saved)} ratings identical within 1e-9 points; source sha256 {'matches' if manifest.get('source_sha256') else 'not recorded'}")


@app.command("weighted")
def weighted(
    source: str = typer.Argument(..., help="Battle rows (with sampling_prob for ipw: the arena's `db` has it), a file or registry name."),
    weighting: str = typer.Option("ipw", "--weighting", help="ipw (1 / P(pair), the Chatbot Arena paper), arena-rank (1 / max(n_pair, floor)) or none."),
    floor: float = typer.Option(50, "--floor", min=1, help="arena-rank's minimum pair count."),
    anchor: Optional[str] = typer.Option(None, "--anchor", help="MODEL=VALUE (default: as for the leaderboard)."),
    level: float = typer.Option(0.95, "--level"),
    alias: list[str] = typer.Option([], "--alias", help="OLD=NEW model renaming; repeatable."),
    fmt: Out = typer.Option(Out.table, "--format", "-f"),
    output: Optional[Path] = typer.Option(None, "-o", "--output"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Sampling-aware Bradley-Terry: inverse-propensity or arena-rank reweighting, with sandwich
    intervals, next to the unweighted rating."""
    from statistics import NormalDist

    import numpy as np
    import pandas as pd

    from openarena.ratings.scale import POINTS_PER_LOGIT, resolve_anchor, to_elo
    from openarena.ratings.weighting import WEIGHTINGS, fit_weighted

    if weighting not in WEIGHTINGS:
        raise fail(f"--weighting {weighting!r}: expected one of {', '.join(WEIGHTINGS)}")
    if not 0 < level < 1:
        raise fail(f"--level {level}: expected a number between 0 and 1")
    with user_errors():
        data = _load(source, quiet, alias)
        fit = fit_weighted(data, weighting, floor=floor)
        plain = fit_weighted(data, "none") if weighting != "none" else fit
    anc = resolve_anchor(anchor, fit.models)
    A = anc.contrast(fit.models)
    r = to_elo(fit.theta, fit.models, anc)
    sd = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", A, fit.cov, A), 0)) * POINTS_PER_LOGIT
    z = NormalDist().inv_cdf(0.5 + level / 2)
    t = pd.DataFrame({"model": fit.models, "rating": r, "rating_q025": r - z * sd, "rating_q975": r + z * sd, "rating_unweighted": to_elo(plain.theta, plain.models, anc)})
    t["shift"] = t["rating"] - t["rating_unweighted"]
    t = t.sort_values("rating", ascending=False, ignore_index=True)
    _emit(t, fmt, output, quiet, f"Bradley-Terry with {weighting} weights (sandwich {level:g} intervals, anchor {anc.describe()})")


@app.command("frontier-history")
def frontier_history(
    history: Path = typer.Argument(..., help="Leaderboard history with model keys: jasontrigg0 alltime.csv (key, rating, date)."),
    prices: list[Path] = typer.Option(..., "--prices", help="Price table(s), as for `trust frontier` (today's prices are applied to every date)."),
    price_weights: str = typer.Option("3:1", "--price-weights"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="PNG of the frontier at each date (price axis log)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="CSV date,model,rating,price of the frontier models."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """The cost-vs-score frontier at every date of a leaderboard history ('intelligence per
    dollar' over time)."""
    import pandas as pd

    from openarena.analysis.trust.drift import read_board_history
    from openarena.analysis.trust.frontier import frontier_over_time, parse_weights
    from openarena.analysis.trust.plots import frontier_history_plot

    with user_errors():
        h = read_board_history(str(history))
        table = pd.concat([read_model_prices(p) for p in prices], ignore_index=True)
        fr = frontier_over_time(h, table, parse_weights(price_weights))
        if plot is not None:
            frontier_history_plot(fr, plot)
            _say(quiet, f"wrote {plot}")
    fr = fr.assign(date=pd.to_datetime(fr["date"]).dt.date.astype(str))
    _write(fr.to_csv(index=False, float_format="%.10g"), output, quiet, f" ({fr['date'].nunique()} dates)")


@app.command("control")
def control(
    source: str = typer.Argument(..., help="Battle rows (one per vote), a registry name or `db`."),
    values: Path = typer.Option(..., "--values", help="CSV with a model (or key) column and per-model columns (latency, parameters, price, ...)."),
    column: str = typer.Option(..., "--column", help="The per-model column to control for."),
    log: bool = typer.Option(False, "--log", help="Use log10 of the column (prices, parameter counts)."),
    prior: float = typer.Option(1.0, "--prior", min=0.0, help="L2 prior on model strengths (a per-model covariate is only identified with one)."),
    alias: list[str] = typer.Option([], "--alias", help="OLD=NEW model renaming; repeatable."),
    fmt: Out = typer.Option(Out.table, "--format", "-f"),
    output: Optional[Path] = typer.Option(None, "-o", "--output"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Leaderboard controlled for any per-model covariate (latency, parameter count, ...), with
    the coefficient and its interval, next to the plain board's rank."""
    from openarena.analysis.trust.frontier import covariate_control, read_model_values

    with user_errors():
        data = _load(source, quiet, alias)
        if not hasattr(data, "frame"):
            raise fail(f"{source}: covariate control needs one row per vote; this source is aggregated pair counts")
        vals = read_model_values(values, column, log=log)
        name = f"log10_{column}" if log else column
        lb, plain, excluded = covariate_control(data, vals, name, prior=prior)
    _report_control(lb, plain, excluded, fmt, output, quiet, prior)


def _report_control(lb, plain, excluded, fmt, output, quiet, prior) -> None:
    if excluded:
        _say(quiet, f"left out (no value): {', '.join(excluded)}")
    c = lb.coefficients.iloc[0]
    _say(quiet, f"{c['name']} coefficient {c.coef:.4f} logits per RMS difference (se {c.se:.4f}, 95% CI [{c.coef_q025:.4f}, {c.coef_q975:.4f}]); prior {prior:g}")
    t = lb.table[["model", "rating", "rating_q025", "rating_q975"]].copy()
    t["rank_controlled"] = t["rating"].rank(ascending=False, method="min").astype(int)
    t = t.sort_values(["rank_controlled", "model"]).reset_index(drop=True)  # rows in the order of the ranks shown
    plain_rank = plain.table.set_index("model")["rating"].rank(ascending=False, method="min")
    t["rank_raw"] = t["model"].map(plain_rank).astype("Int64")
    _emit(t, fmt, output, quiet, f"Leaderboard controlled for {c['name']}", {"coefficient": lb.coefficients.to_dict(orient="records")})
