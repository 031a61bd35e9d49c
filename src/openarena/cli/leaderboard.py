"""``openarena leaderboard SOURCE``: battles in, leaderboard out (overall, by category, with
style control)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from openarena.analysis.leaderboard import NOT_ENOUGH_VOTES
from openarena.cli.common import as_flags, download_progress, err_console, fail, out_console, progress_bar, results_table, user_errors
from openarena.errors import NotEnoughVotes


class CI(str, Enum):
    """--ci choices."""
    sandwich = "sandwich"
    bootstrap = "bootstrap"
    none = "none"


class Ties(str, Enum):
    """--ties choices."""
    half = "half"
    rao_kupper = "rao-kupper"
    davidson = "davidson"


class Rating(str, Enum):
    """--rating choices."""
    bt = "bt"
    elo = "elo"


class Engine(str, Enum):
    """--engine choices."""
    numpy = "numpy"
    duckdb = "duckdb"
    spark = "spark"


class Format(str, Enum):
    """--format choices."""
    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"
    html = "html"


def parse_aliases(items: list[str]) -> dict[str, str]:
    """['OLD=NEW', ...] -> {OLD: NEW}; raises typer.Exit(2) on a malformed item."""
    out: dict[str, str] = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise fail(f"--alias {item!r}: expected OLD=NEW, e.g. chatgpt-4o-latest=chatgpt-4o-latest-2024-08-08")
        out[old.strip()] = new.strip()
    return out


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        err_console.print(text, highlight=False)


def load_battles(
    source: str,
    *,
    anony: bool = False,
    dedup: bool = False,
    since: str | None = None,
    until: str | None = None,
    exclude: list[str] = (),
    min_battles: int = 0,
    aliases: dict[str, str] | None = None,
    identity_leak: bool = False,
    named: bool = False,
    quiet: bool = False,
    engine: str | None = None,
    needs_rows: str | None = None,
    arena: str | None = None,
    counts_suffice: bool = False,
):
    """Read SOURCE and apply the filters (and the identity-leak curation when asked), printing
    what each step removed to stderr unless ``quiet``.

    ``engine`` ('numpy' | 'duckdb' | 'spark' | None = by size, see
    :func:`openarena.engines.choose_engine`): duckdb and spark aggregate Parquet partitions
    to pair counts where they live; ``needs_rows`` names the asked-for feature that needs battle
    rows (then only the in-memory path is possible). ``counts_suffice``: the caller needs no
    battle rows (a leaderboard without row features), so one local Parquet file in the
    canonical schema is counted without reading its rows when no filter is asked for
    (:func:`openarena.engines.single_file.file_pair_counts`: the same PairCounts, no pandas)."""
    from pathlib import Path

    from openarena.engines import choose_engine
    from openarena.engines.files import is_glob

    chosen = choose_engine(source, engine)
    local = Path(source).expanduser()  # as openarena.data.registry.resolve names a local file
    filters = (anony, dedup, since, until, exclude, min_battles, aliases, identity_leak, named, arena, needs_rows)
    if counts_suffice and chosen is None and not any(filters) and local.suffix.lower() == ".parquet" and local.is_file():
        from openarena.engines.single_file import file_pair_counts

        data = file_pair_counts(local, str(local))
        if data is not None:
            return data
    if chosen in ("duckdb", "spark") or (chosen == "numpy" and is_glob(source)):
        if needs_rows or identity_leak:
            what = needs_rows or "--identity-leak"
            if engine is not None:
                raise fail(f"--engine {engine} aggregates votes to pair counts, but {what} needs battle rows; use --engine numpy")
        else:
            from openarena.engines import aggregate_counts

            info: dict = {}
            data = aggregate_counts(source, engine=chosen, anony=anony, dedup=dedup, since=since, until=until, exclude=tuple(exclude), aliases=aliases or None, min_battles=min_battles, info=info)
            _say(quiet, f"engine {chosen}: {info['rows']:,} rows in {info['files']} Parquet file(s) ({info['files_reused']} from the stored aggregate) -> {len(data.pairs):,} pairs in {info['seconds']:.1f} s")
            report_steps(data, 0, quiet)
            return data
    from openarena.api import load, read  # the in-memory path: openarena.load with a download progress bar

    with download_progress(f"fetching {source}", enabled=not quiet) as progress:
        data = read(source, named=named, progress=progress)
    n_before = len(data.steps)  # steps of the reader itself are not filters the user asked for
    data = load(data, anony=anony, dedup=dedup, since=since, until=until, exclude=exclude, min_battles=min_battles,
                aliases=aliases, identity_leak=identity_leak, arena=arena)
    report_steps(data, n_before, quiet)
    return data


def report_steps(data, since_index: int, quiet: bool) -> None:
    """Print, one line each, the filter steps added after position ``since_index`` (stderr)."""
    for step in list(data.steps)[since_index:]:
        detail = f" ({step.detail})" if step.detail else ""
        _say(quiet, f"filter {step.name}: removed {step.removed:,.0f}, kept {step.remaining:,.0f}{detail}")


def print_table(lb, top: int | None, title: str | None = None) -> None:
    """The leaderboard as a rich table on stdout (first ``top`` rows), then the tie parameter and the style coefficients when there are any."""
    from openarena.analysis.report import display_frame

    d = display_frame(lb)
    if top:
        d = d.head(top)
    what = f"{'Bradley-Terry' if lb.rating_system == 'bt' else 'Online Elo'} leaderboard"
    if lb.category:
        what += f", category {lb.category}"
    if lb.coefficients is not None:
        from openarena.data.schema import STYLE_FEATURES

        names = [str(n) for n in lb.coefficients["name"]]
        other = [n for n in names if n not in STYLE_FEATURES]
        what += ", style control" if not other else (", style control and " if len(other) < len(names) else ", controlled for ") + ", ".join(other)
    t = results_table(title or f"{what} ({lb.provenance['n_battles']:,.0f} votes, anchor {lb.anchor.describe()})", d.columns)
    for row in d.itertuples(index=False):
        t.add_row(*map(str, row))
    out_console.print(t)
    if lb.tie_param is not None:
        out_console.print(f"tie parameter ({lb.ties}): {lb.tie_param:.4f}")
    if lb.coefficients is not None:
        c = results_table("Style / covariate coefficients (logits per standard deviation)", ("name", "coef", "se", f"{lb.level * 100:g}% CI"))
        for r in lb.coefficients.itertuples(index=False):
            c.add_row(r.name, f"{r.coef:.4f}", f"{r.se:.4f}", f"[{r.coef_q025:.4f}, {r.coef_q975:.4f}]")
        out_console.print(c)


def _print_category_summary(boards, min_votes_shown: int, quiet: bool) -> None:
    from openarena.analysis.categories import summary_table

    s = summary_table(boards)
    t = results_table(f"Leaderboards by category (models with more than {min_votes_shown} votes shown; leader by rank (UB), then rating)", ("category", "battles", "models shown", "leader", "rating"))
    for r in s.itertuples(index=False):
        if r.models_shown == 0:
            leader, rating = f"(none: every model has at most {min_votes_shown} votes)", "-"
        else:
            leader, rating = r.leader, f"{r.leader_rating:.1f}"
        t.add_row(str(r.category), f"{r.battles:,}", str(r.models_shown), leader, rating)
    out_console.print(t)
    empty = int((s["models_shown"] == 0).sum())
    if empty:
        _say(quiet, f"{empty} of {len(s)} categories show no model: every model there has at most {min_votes_shown} votes (--min-votes-shown); use --min-votes-shown 0 to show them")


def _write_category_table(boards, fmt: "Format", output: Path | None, quiet: bool) -> None:
    """All shown rows of all categories in one long table (first column ``category``), as CSV,
    JSON, markdown or HTML, to ``output`` or stdout."""
    import pandas as pd

    long = pd.concat([b.table.assign(category=name) for name, b in boards.items()], ignore_index=True)
    long = long[["category"] + [c for c in long.columns if c != "category"]]
    if fmt in (Format.csv, Format.table):
        text = long.to_csv(index=False, float_format="%.10g")
    elif fmt == Format.json:
        text = long.to_json(orient="records", indent=1)
    elif fmt == Format.markdown:
        cols = ["category", "rank_ub", "model", "rating", "rating_q025", "rating_q975", "num_battles"] + (["rank_delta"] if "rank_delta" in long else [])
        rows = long[cols].fillna("").astype(str)
        text = "| " + " | ".join(cols) + " |\n|" + "|".join("---" for _ in cols) + "|\n" + "".join("| " + " | ".join(r) + " |\n" for r in rows.itertuples(index=False))
    else:
        text = long.to_html(index=False, float_format=lambda v: f"{v:.1f}")
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        _say(quiet, f"wrote {output} ({len(long)} rows, {len(boards)} categories)")
    else:
        typer.echo(text, nl=not text.endswith("\n"))


def _controls(control: Optional[str], prices: list[Path], price_weights: str):
    """--control as the API takes it: the per-battle names as given, and 'price' as the
    per-model covariate {"log_price": {model: log10 blended price}} read from --prices."""
    if prices and not (control and "price" in [c.strip() for c in control.split(",")]):
        raise fail("--prices is used with --control price")
    if not control:
        return control
    names = [c.strip() for c in control.split(",") if c.strip()]
    if "price" not in names:
        return control
    if not prices:
        raise fail("--control price needs --prices FILE (a price table or a model registry YAML with price fields)")
    import pandas as pd

    from openarena import api
    from openarena.analysis.trust.frontier import parse_weights

    table = pd.concat([api.read_model_prices(p) for p in prices], ignore_index=True)
    rest = [n for n in names if n != "price"]
    return rest + [{"log_price": api.model_prices(table, weights=parse_weights(price_weights))}]


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name.lower()).strip("_") or "category"


def leaderboard(
    source: str = typer.Argument(..., help="Battle file (clean_battle JSON/JSONL, CSV, Parquet, pair counts JSON), a registry name (see `openarena datasets`), hf://datasets/OWNER/NAME, or `db` / a database URL for the arena's own votes."),
    ci: Optional[CI] = typer.Option(None, "--ci", help="Confidence intervals: sandwich (robust CLT; the default for bt), bootstrap (the default for elo, as in FastChat) or none."),
    rounds: int = typer.Option(100, "--rounds", min=1, max=10_000, help="Bootstrap rounds (at most 10,000)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Bootstrap seed (a non-negative integer)."),
    anchor: Optional[str] = typer.Option(None, "--anchor", help="MODEL=VALUE pins a model's rating (default mixtral-8x7b-instruct-v0.1=1114 when present, else mean=1000; for the arena's database `db`: mean=1000, as the web leaderboard)."),
    ties: Ties = typer.Option(Ties.half, "--ties", help="Ties as half wins, or the Rao-Kupper / Davidson tie model."),
    rating: Rating = typer.Option(Rating.bt, "--rating", help="bt (Bradley-Terry MLE) or elo (online Elo, K=4)."),
    alias: list[str] = typer.Option([], "--alias", help="OLD=NEW model renaming; repeatable."),
    exclude: list[str] = typer.Option([], "--exclude", help="Model to leave out; repeatable."),
    min_battles: int = typer.Option(0, "--min-battles", min=0, help="Drop models with fewer votes."),
    anony: bool = typer.Option(False, "--anony", help="Anonymous battles only (rows with an `anony` column)."),
    dedup: bool = typer.Option(False, "--dedup", help="Keep dedup_tag.sampled battles only."),
    since: Optional[str] = typer.Option(None, "--since", help="Keep votes at or after this UTC date/time (ISO)."),
    until: Optional[str] = typer.Option(None, "--until", help="Keep votes before this UTC date/time (ISO)."),
    identity_leak: bool = typer.Option(False, "--identity-leak", help="Invalidate battles whose prompt or answers name a model or vendor."),
    named: bool = typer.Option(False, "--named", help="For `db` / a database URL: also count the votes of named (non-anonymous) battles; by default only anonymous votes count, as on the web leaderboard."),
    arena: Optional[str] = typer.Option(None, "--arena", help="The battles of one arena: text, vision (an image came with the prompt) or code. A source without an arena column holds text battles only."),
    control: Optional[str] = typer.Option(None, "--control", help="Control for: style, length, markdown, column names, and price (log10 blended price per model, from --prices; needs --prior, e.g. 1), comma-separated."),
    prices: list[Path] = typer.Option([], "--prices", help="With --control price: price table(s), as for `trust frontier` (arena pricing tables, litellm JSON, CSV model,input_price,output_price, or a model registry YAML); repeatable, the first listing a model wins."),
    price_weights: str = typer.Option("3:1", "--price-weights", help="With --control price: input:output token weights of the blended price."),
    prior: float = typer.Option(0.0, "--prior", min=0.0, help="L2 prior on model strengths (0 = plain MLE; needed for per-model covariates)."),
    category: Optional[str] = typer.Option(None, "--category", help="Leaderboard of one category (coding, math, hard_6, english, ...)."),
    categories: Optional[str] = typer.Option(None, "--categories", help="'all' or a comma list: one leaderboard per category (written to --out-dir)."),
    by: Optional[str] = typer.Option(None, "--by", help="One leaderboard per value of this column (e.g. a topic cluster)."),
    min_votes_shown: Optional[int] = typer.Option(None, "--min-votes-shown", min=0, help="In category views (--category, --categories, --by), hide models with at most this many votes (default 300); they are still fitted."),
    drop_unrated: Optional[bool] = typer.Option(None, "--drop-unrated/--no-drop-unrated", help="Leave out (and report as not enough votes) models without a finite rating instead of failing. Default: on for the arena's database (`db`), as the web leaderboard; off for files."),
    level: float = typer.Option(0.95, "--level", help="Interval coverage."),
    rank_intervals: bool = typer.Option(False, "--rank-intervals", help="Add rank_lower,rank_upper: simultaneous rank intervals (all true ranks inside at once with probability >= --level)."),
    rank_method: str = typer.Option("maxz", "--rank-method", help="Simultaneous critical value for --rank-intervals: maxz, chi2 (the Chatbot Arena paper's uniform set) or bonferroni."),
    robustness: Optional[str] = typer.Option(None, "--robustness", help="Red-team rounds (a rounds CSV/Parquet, or db): add each model's robustness (extended Bradley-Terry, with its interval) beside its arena score."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the output here instead of stdout."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Also write leaderboard.csv/.json/.html and the CI plot here (one set per category)."),
    top: Optional[int] = typer.Option(None, "--top", min=1, help="Show only the first N rows in the terminal table."),
    jobs: Optional[int] = typer.Option(None, "--jobs", min=1, help="Bootstrap workers (default: all cores)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No filter report or progress bar."),
    engine: Optional[Engine] = typer.Option(None, "--engine", help="Aggregation engine: numpy (rows in memory), duckdb or spark (Parquet partitions aggregated where they live, new files added incrementally; Spark master from OPENARENA_SPARK_MASTER, default local[*]). Default: duckdb for Parquet folders/globs of more than 20M votes, else numpy."),
) -> None:
    """Build the leaderboard of SOURCE: Bradley-Terry ratings on the Elo scale with confidence
    intervals and rank (UB); optionally style-controlled and per category. The arena's own
    votes (`db`) count anonymous battles only, as the web leaderboard does (--named adds the
    named ones). Rank (UB) is computed at the anchor's scale: the anchored model's interval is
    a point, which can move models near it by a place or two; compare boards with one anchor."""
    from openarena import api
    from openarena.analysis.report import render, write_outputs

    aliases = parse_aliases(alias)
    if sum(x is not None for x in (category, categories, by)) > 1:
        raise fail("use one of --category, --categories and --by")
    ci_method = (ci or (CI.bootstrap if rating == Rating.elo else CI.sandwich)).value
    say = lambda text: _say(quiet, text)  # noqa: E731
    from_db = api.is_database_source(source)  # the arena's own votes: what the web leaderboard shows, by default
    drop_unrated = from_db if drop_unrated is None else drop_unrated
    anchor = anchor or ("mean" if from_db else None)
    with user_errors():
        controls = _controls(control, prices, price_weights)
        needs_rows = next((flag for flag, on in (("--arena", arena), ("--control", control), ("--category", category), ("--categories", categories), ("--by", by), ("--rating elo", rating == Rating.elo)) if on), None)
        data = load_battles(source, anony=anony, dedup=dedup, since=since, until=until, exclude=exclude, min_battles=min_battles, aliases=aliases, identity_leak=identity_leak, named=named, quiet=quiet, engine=engine.value if engine else None, needs_rows=needs_rows, arena=arena, counts_suffice=robustness is None and not drop_unrated)
        data = api.prepare(data, control=controls, notify=say)
        options = dict(rating=rating.value, ties=ties.value, ci=ci_method, rounds=rounds, seed=seed, anchor=anchor, level=level, n_jobs=jobs, prior=prior, control=controls, drop_unrated=drop_unrated)
        if rank_intervals:
            if rank_method not in ("maxz", "chi2", "bonferroni"):
                raise fail(f"--rank-method {rank_method!r}: expected maxz, chi2 or bonferroni")
            options["rank_intervals"] = rank_method

        if categories is not None or by is not None:
            names = "all" if by is not None or categories.strip() == "all" else [c.strip() for c in categories.split(",") if c.strip()]
            shown = api.MIN_VOTES_SHOWN if min_votes_shown is None else min_votes_shown
            boards = api.category_leaderboards(data, names, by=by, min_votes_shown=shown, notify=say, **options)
            for name, why in getattr(boards, "skipped", {}).items():
                _say(quiet, f"skipped category {name}: {as_flags(why)}")
            if output is not None or fmt != Format.table:
                _write_category_table(boards, fmt, output, quiet)
            else:
                _print_category_summary(boards, shown, quiet)
            if out_dir is not None:
                for name, board in boards.items():
                    sub = out_dir / _slug(name)
                    write_outputs(board.leaderboard, sub)
                    board.table.to_csv(sub / "shown.csv", index=False, float_format="%.10g")
                _say(quiet, f"wrote {len(boards)} leaderboards under {out_dir}/<category>/ (leaderboard.csv, shown.csv with rank_delta, .html, CI plot, heatmaps)")
            return

        try:
            with progress_bar("bootstrap", rounds if ci_method == "bootstrap" and category is None else 0, enabled=not quiet) as advance:
                lb = api.leaderboard(data, category=category, min_votes_shown=min_votes_shown, progress=advance, notify=say, **options)
        except NotEnoughVotes as e:
            if not drop_unrated:
                raise
            # what the web leaderboard shows for the same votes: a plain message, not an error
            err_console.print(f"{NOT_ENOUGH_VOTES}\nnot enough votes: " + "; ".join(f"{m} ({why})" for m, why in e.unrated.items()), highlight=False)
            return
        report_steps(lb.counts, len(data.steps), quiet)  # e.g. 'unrated': the models --drop-unrated left out
        if robustness is not None:
            lb = api.with_robustness(lb, robustness)
        if category is not None:
            n_fitted = len(lb.counts.models)
            _say(quiet, f"category {category}: {lb.counts.total:,.0f} battles; {len(lb.table)} of {n_fitted} models with more than {lb.min_votes_shown} votes shown")
            if lb.table.empty:
                raise fail(f"category {category}: every one of its {n_fitted} models has at most {lb.min_votes_shown} votes (--min-votes-shown); nothing to show. Lower --min-votes-shown (e.g. 0) to see them")
        for note in lb.notes:
            _say(quiet, f"note: {as_flags(note)}")
        if out_dir is not None:
            paths = write_outputs(lb, out_dir)
            for kind, p in paths.items():
                _say(quiet, f"wrote {kind}: {p}")
        if fmt == Format.table and output is None:
            print_table(lb, top)
            return
        text = render(lb, "csv" if fmt == Format.table else fmt.value)
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text)
            _say(quiet, f"wrote {output}")
        else:
            typer.echo(text, nl=False)
