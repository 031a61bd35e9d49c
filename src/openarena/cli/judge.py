"""``openarena judge``: automatic benchmarks (Arena-Hard-Auto, MT-Bench) and judge audits.

    openarena judge answer  --registry models.yaml --model M --bench arena-hard-v0.1 --out answers/
    openarena judge run     --registry models.yaml --judge J --bench arena-hard-v0.1 --answers answers/ --out judgments.jsonl
    openarena judge show    judgments.jsonl [--answers answers/ --control style]
    openarena judge audit   judgments.jsonl --answers answers/
    openarena judge quality bench1.jsonl=map.json bench2.jsonl --reference arena.jsonl

No logic lives here beyond parsing options and printing: see :mod:`openarena.judging`.
"""

from __future__ import annotations

import json
import math
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

from openarena.cli.common import err_console, fail, out_console, progress_bar, response_cache, results_table, user_errors

app = typer.Typer(
    name="judge",
    help="Automatic benchmarks with LLM judges: answer, run, show, audit, quality.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstrings are wrapped to the terminal, `code` shown as code
)


class Mode(str, Enum):
    """Judging mode: pairwise against a baseline, single-answer grading, or chosen from the input."""
    auto = "auto"
    pairwise = "pairwise"
    single = "single"


class Control(str, Enum):
    """Style covariates of ``judge show``."""
    none = "none"
    length = "length"
    markdown = "markdown"
    style = "style"


class Fmt(str, Enum):
    """Output formats of the judge tables."""
    table = "table"
    csv = "csv"
    json = "json"


def _f(x: Any, nd: int = 1) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    return "" if not math.isfinite(v) else f"{v:.{nd}f}"


def _print_frame(df, title: str, nd: int = 1) -> None:
    t = results_table(title, df.columns)
    for row in df.itertuples(index=False):
        t.add_row(*[_f(v, nd) if isinstance(v, float) else str(v) for v in row])
    out_console.print(t)


def _registry(path: Path):
    from openarena.providers.registry import load_registry

    return load_registry(path)


def _retry(retries: int):
    from openarena.providers.client import RetryPolicy

    return RetryPolicy(max_attempts=retries)


def _number(option: str, value: Optional[float], low: float, high: Optional[float] = None, *, low_open: bool = False) -> None:
    """Refuse (one line, exit 2) a float option that is not finite or outside [low, high]
    (``low`` excluded with ``low_open``); None (not given) passes. typer's own float ranges let
    nan through and cannot exclude an end."""
    if value is None:
        return
    ok = math.isfinite(value) and (value > low if low_open else value >= low) and (high is None or value <= high)
    if not ok:
        lo = f"> {low:g}" if low_open else f">= {low:g}"
        hi = "" if high is None else f" and <= {high:g}"
        raise fail(f"{option} {value:g}: expected a finite number {lo}{hi}")


def _level(option: str, value: Optional[float]) -> None:
    """An interval level: strictly between 0 and 1."""
    if value is not None and not (math.isfinite(value) and 0 < value < 1):
        raise fail(f"{option} {value:g}: an interval level must be strictly between 0 and 1 (e.g. 0.9)")


def _exists(*paths: Optional[Path]) -> None:
    """Refuse a named input path that does not exist, before any work."""
    for p in paths:
        if p is not None and not p.exists():
            raise fail(f"{p}: no such file or folder")


def _mkdir(option: str, folder: Path) -> None:
    """Make an output folder before the work, so an unwritable place fails first, on one line
    (OSError with a file name goes through user_errors)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as e:  # a file in the way
        raise fail(f"{option}: {e.filename} is a file, not a folder") from None


def _writable_file(option: str, path: Path) -> None:
    """Make the folder of an output file and refuse a folder where a file is expected."""
    if path.is_dir():
        raise fail(f"{option} {path}: is a folder (expected a file path)")
    _mkdir(option, path.parent)


@app.command("answer")
def answer(
    registry: Path = typer.Option(..., "--registry", "-r", help="Model registry YAML."),
    model: list[str] = typer.Option(..., "--model", "-m", help="Registry model to answer with; repeatable."),
    bench: str = typer.Option(..., "--bench", "-b", help="arena-hard-v0.1, arena-hard-v2.0, mt-bench, a JSONL of prompts, or hf://..."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder of answer files (<model>.jsonl)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Local copy of the benchmark data (else the Hugging Face hub)."),
    concurrency: int = typer.Option(8, "--concurrency", "-c", min=1, help="Calls in flight per model."),
    retries: int = typer.Option(3, "--retries", min=1, help="Attempts per call (exponential backoff)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds per attempt (default: the model's timeout_s)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Override the model's temperature, 0..2 (MT-Bench: FastChat's per-category temperatures by default)."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=1, help="Override the model's max_tokens."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N questions (trial runs)."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Keep every finished call in <out>/.openarena-cache.sqlite."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Generate the missing answers of registry models (resumable: a re-run fills only gaps)."""
    from openarena.judging.answers import generate_answers
    from openarena.judging.questions import MT_BENCH_TEMPERATURE, load_questions

    with user_errors():
        # every cheap check before the questions are loaded (which may wait on the hub)
        _number("--temperature", temperature, 0, 2)
        _number("--timeout", timeout, 0, low_open=True)
        _exists(data_dir)
        reg = _registry(registry)
        configs = {name: reg.get(name) for name in model}
        _mkdir("--out", out)
        qs = load_questions(bench, local_root=data_dir)
        if limit:
            qs = qs.subset(limit)
        by_cat = MT_BENCH_TEMPERATURE if qs.name == "mt-bench" and temperature is None else None
        rc = response_cache(out, cache)
        exit_code = 0
        try:
            for name, cfg in configs.items():
                with progress_bar(f"answers {name}", len(qs), enabled=not quiet) as advance:
                    rep = generate_answers(cfg, qs, out, concurrency=concurrency, retry=_retry(retries), timeout_s=timeout,
                                           temperature=temperature, max_tokens=max_tokens, temperature_by_category=by_cat,
                                           cache=rc, progress=lambda d, t: advance(1))
                out_console.print(
                    f"{name}: {rep.generated} generated, {rep.existing} already there, {len(rep.failures)} failed "
                    f"of {rep.total}; {rep.calls} calls, {rep.cache_hits} from cache; tokens {rep.prompt_tokens:,} in / "
                    f"{rep.completion_tokens:,} out; cost ${rep.cost_usd:.4f}; {rep.elapsed_s:.1f} s -> {rep.path}", highlight=False)
                for f in rep.failures[:10]:
                    err_console.print(f"  failed {f.uid}: {f.kind}: {f.message}", highlight=False)
                if rep.failures:
                    exit_code = 1
        finally:
            if rc is not None:
                rc.close()
        if exit_code:
            err_console.print("some questions have no answer; run the same command again to retry them")
            raise typer.Exit(exit_code)


@app.command("run")
def run(
    registry: Path = typer.Option(..., "--registry", "-r", help="Model registry YAML (holds the judge)."),
    judge: str = typer.Option(..., "--judge", "-j", help="Registry name of the judge model."),
    bench: str = typer.Option(..., "--bench", "-b", help="Question set (as for `judge answer`)."),
    answers: Path = typer.Option(..., "--answers", "-a", help="Folder (or file) of answers."),
    out: Path = typer.Option(..., "--out", "-o", help="Judgment JSONL file (appended, resumable)."),
    model: list[str] = typer.Option([], "--model", "-m", help="Model to judge; repeatable (default: every model with answers)."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Baseline model (default: the benchmark's: gpt-4-0314 for v0.1; o3-mini / gemini-2.0-flash per category for v2.0)."),
    mode: Mode = typer.Option(Mode.auto, "--mode", help="pairwise (against the baseline) or single (1-10 grades); auto: single for mt-bench."),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="Judge prompt name or YAML file (default: the benchmark's)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Local copy of the benchmark data."),
    temperature: float = typer.Option(0.0, "--temperature", help="Judge temperature (0..2)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Judge seed (sent when given)."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=1, help="Judge max_tokens (default: the prompt's, 4096 Arena-Hard, 2048 MT-Bench)."),
    single_order: bool = typer.Option(False, "--single-order", help="Pairwise: judge only game 1 (no swapped positions)."),
    rating_rule: str = typer.Option("openarena", "--rating-rule", help="Single: openarena | fastchat | arena-bench-v1."),
    concurrency: int = typer.Option(8, "--concurrency", "-c", min=1),
    retries: int = typer.Option(3, "--retries", min=1, help="Attempts per call."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds per attempt."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N questions."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Keep every finished call in .openarena-cache.sqlite next to the output (the cache of every LLM call: `tag` uses it too)."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Judge answers: pairwise against a baseline in both orders, or MT-Bench single grades."""
    from openarena.judging.answers import read_answers
    from openarena.judging.judge import JudgeSettings
    from openarena.judging.pairwise import judge_pairwise
    from openarena.judging.parse import RATING_RULES
    from openarena.judging.prompts import get_prompt
    from openarena.judging.questions import BENCHMARKS, load_questions
    from openarena.judging.single import DEFAULT_PROMPTS, grade_single

    with user_errors():
        # every cheap check before the questions are loaded (which may wait on the hub)
        _number("--temperature", temperature, 0, 2)
        _number("--timeout", timeout, 0, low_open=True)
        if rating_rule not in RATING_RULES:
            raise fail(f"--rating-rule {rating_rule!r}: expected one of {', '.join(RATING_RULES)}")
        _exists(answers, data_dir)
        reg = _registry(registry)
        settings = JudgeSettings(reg.get(judge), temperature=temperature, max_tokens=max_tokens, seed=seed,
                                 retry=_retry(retries), timeout_s=timeout, rating_rule=rating_rule)
        if prompt:
            get_prompt(prompt)
        ans = read_answers(answers)
        _writable_file("--out", out)
        qs = load_questions(bench, local_root=data_dir)
        if limit:
            qs = qs.subset(limit)
        spec = BENCHMARKS.get(bench)
        kind = mode.value if mode != Mode.auto else ("single" if qs.name == "mt-bench" else "pairwise")
        if kind == "pairwise":
            base0: Any = baseline or (spec.baseline if spec and spec.baseline else None)
            if base0 is None:
                raise fail("--baseline is needed for this question set")
            needed = set(base0.values()) if isinstance(base0, dict) else {base0}
            needed |= set(model)
        else:
            needed = set(model)
        absent = sorted(m for m in needed if not any(q.uid in ans.get(m, {}) for q in qs))
        if absent:  # before any judge call: nothing could be judged against / for them
            raise fail(f"{answers}: no answers of {', '.join(absent)} to any of the {len(qs)} questions of {qs.name} "
                       f"(answers found for: {', '.join(sorted(ans)) or 'no model'}); run `openarena judge answer` first")
        rc = response_cache(out.parent, cache)
        try:
            if kind == "pairwise":
                base: Any = baseline or (spec.baseline if spec and spec.baseline else None)
                if base is None:
                    raise fail("--baseline is needed for this question set")
                bases = set(base.values()) if isinstance(base, dict) else {base}
                models = list(model) or sorted(m for m in ans if m not in bases)
                pr: Any = prompt or (spec.prompt if spec and spec.prompt else "arena-hard")
                n_games = len(qs) * len(models) * (1 if single_order else 2)
                with progress_bar("judging", n_games, enabled=not quiet) as advance:
                    rep = judge_pairwise(qs, ans, models, settings, out, baseline=base, prompt=pr, both_orders=not single_order,
                                         concurrency=concurrency, cache=rc, progress=lambda d, t: advance(1))
                done = rep.judged
                asked = rep.games
            else:
                models = list(model) or sorted(ans)
                prompts = {k: prompt for k in DEFAULT_PROMPTS} if prompt else None
                with progress_bar("grading", sum(len(q.turns) for q in qs) * len(models), enabled=not quiet) as advance:
                    rep = grade_single(qs, ans, models, settings, out, prompts=prompts, concurrency=concurrency, cache=rc,
                                       progress=lambda d, t: advance(1))
                done = rep.graded
                asked = rep.gradings
        finally:
            if rc is not None:
                rc.close()
        out_console.print(
            f"{kind}: {done} judged now, {rep.existing} already there, of {asked}; unparseable after one retry: "
            f"{rep.unparseable} (retried {rep.retried}); failed calls: {len(rep.failures)}; missing answers: "
            f"{len(rep.missing_answers)}; {rep.calls} calls, {rep.cache_hits} from cache; tokens {rep.prompt_tokens:,} in / "
            f"{rep.completion_tokens:,} out; cost ${rep.cost_usd:.4f}; {rep.elapsed_s:.1f} s -> {out}", highlight=False)
        if rep.unparseable:
            err_console.print("unparseable verdicts are recorded with their reason and left out of every score; "
                              "see `openarena judge show` for the count", highlight=False)
        for f in rep.failures[:10]:
            err_console.print(f"  failed {f}", highlight=False)
        if rep.missing_answers:
            by: dict[str, list[str]] = {}
            for m, uid in rep.missing_answers:
                by.setdefault(m, []).append(uid)
            for m, uids in sorted(by.items()):
                err_console.print(f"missing answers of {m} to {len(uids)} question(s): {', '.join(uids[:5])}"
                                  f"{', ...' if len(uids) > 5 else ''}", highlight=False)
            err_console.print("those judgments were not made; answer them with `openarena judge answer` and run again",
                              highlight=False)
            raise typer.Exit(2)
        if rep.failures:
            err_console.print("some judge calls failed; run the same command again to retry them")
            raise typer.Exit(1)


def _kind_of(paths: list[Path]) -> str:
    from openarena.judging.store import read_jsonl

    first = paths[0]
    files = sorted(first.rglob("*.jsonl")) if first.is_dir() else [first]
    if not files or files[0].suffix not in (".jsonl",):
        return "battles"
    rows = read_jsonl(files[0], tolerate_torn_tail=True)[:1]
    if not rows:
        return "battles"
    r = rows[0]
    if "games" in r or "game" in r:
        return "pairwise"
    if "score" in r and "model" in r and ("turn" in r or "judgment" in r):  # FastChat / ours; arena-bench-v1 has no turn
        return "single"
    return "battles"


@app.command("show")
def show(
    source: list[Path] = typer.Argument(..., help="Judgment files/folders (pairwise or single), or a battle file (question_id, model_a, model_b, winner)."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Baseline (default: the model in every battle)."),
    level: float = typer.Option(0.90, "--level", help="Bootstrap interval level, strictly between 0 and 1 (Arena-Hard v2 prints 90%)."),
    rounds: int = typer.Option(100, "--rounds", min=1, max=10_000, help="Bootstrap rounds (at most 10,000)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Bootstrap seed (a non-negative integer)."),
    answers: Optional[Path] = typer.Option(None, "--answers", "-a", help="Answers (for average tokens and style control)."),
    control: Control = typer.Option(Control.none, "--control", help="Style control: length, markdown (density), style (both)."),
    bench: Optional[str] = typer.Option(None, "--bench", "-b", help="Question set, for MT-Bench categories when the records lack them."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir"),
    single_order: bool = typer.Option(False, "--single-order", help="Pairwise: use games judged in one order only (v0.1 style)."),
    rule: str = typer.Option("arena-hard", "--rule", help="Pairwise: arena-hard (each game a battle, much better = 3) or fastchat (MT-Bench: a win only when both orders agree, else a tie)."),
    fmt: Fmt = typer.Option(Fmt.table, "--format", "-f"),
    stats_out: Optional[Path] = typer.Option(None, "--stats-out", help="Also write the bootstrap win rates as bootstrap_stats JSONL (input of `judge quality`)."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Leaderboard of judge results: Bradley-Terry win rate vs the baseline with bootstrap intervals (level stated), style control, per category; or MT-Bench averages per turn and category."""
    from openarena.judging.answers import read_answers

    with user_errors():
        _level("--level", level)
        from openarena.judging.pairwise import PAIR_RULES

        if rule not in PAIR_RULES:
            raise fail(f"--rule {rule!r}: expected one of {', '.join(PAIR_RULES)}")
        if rule == "fastchat" and single_order:
            raise fail("--rule fastchat needs both orders; drop --single-order")
        _exists(*source, answers, data_dir)
        kind = _kind_of(source)
        rule_note = ""
        if stats_out is not None and kind != "single":  # before the bootstrap, not after
            _writable_file("--stats-out", stats_out)
        if kind == "single":
            from openarena.judging.questions import load_questions
            from openarena.judging.report import mt_bench_summary
            from openarena.judging.single import load_single_judgments

            recs = load_single_judgments(source)
            invalid = [r for r in recs if r["status"] == "out_of_range"]
            if invalid and not quiet:
                err_console.print(f"{len(invalid)} grading(s) outside the 1-10 scale counted as invalid (status out_of_range) "
                                  f"and left out of every mean, like unparseable ratings; first: {invalid[0]['reason']}",
                                  highlight=False)
            qs = load_questions(bench, local_root=data_dir) if bench else None
            s = mt_bench_summary(recs, qs, rounds=rounds, level=level, seed=seed)
            if fmt == Fmt.json:
                typer.echo(json.dumps({"overall": s.overall.to_dict(orient="records"),
                                       "by_category": s.by_category.reset_index().to_dict(orient="records")}, default=str, indent=2))
                return
            if fmt == Fmt.csv:
                typer.echo(s.overall.to_csv(index=False), nl=False)
                return
            _print_frame(s.overall, f"Single grades (1-10: MT-Bench, arena-bench-v1), mean per model and turn; {s.level * 100:g}% bootstrap CI over questions ({rounds} rounds)", 3)
            _print_frame(s.by_category.reset_index(), "MT-Bench mean score per category (both turns)", 2)
            return
        if kind == "pairwise":
            from openarena.judging.pairwise import judgments_to_battles, load_judgments

            recs = load_judgments(source, baseline)
            battles, info = judgments_to_battles(recs, drop_incomplete=not single_order, source=str(source[0]), rule=rule)
            rule_note = ("rule fastchat: one battle per question, a win only when both orders agree, else a tie"
                         if rule == "fastchat" else
                         "rule arena-hard: each game a battle" + (", much better = 3" if info["much_better"] else ""))
            if not quiet:
                err_console.print(
                    f"{info['games']} games on {info['questions']} (model, question) pairs; {info['parsed_games']} parsed; "
                    f"{info['dropped_questions']} pairs left out (a game unparseable or missing); {info['rows']} battle rows "
                    f"({rule_note})", highlight=False)
        else:
            from openarena.data.readers import read_battles

            if len(source) != 1:
                raise fail("give one battle file")
            battles = read_battles(source[0])
        from openarena.judging.report import pairwise_report

        ans = read_answers(answers) if answers else None
        with progress_bar("bootstrap", rounds, enabled=not quiet) as advance:
            res = pairwise_report(battles, baseline=baseline, level=level, rounds=rounds, seed=seed, answers=ans,
                                  control=None if control == Control.none else control.value, progress=advance)
        if stats_out is not None:
            stats_out.write_text("".join(json.dumps(r) + "\n" for r in res.bootstrap_records()))
            if not quiet:
                err_console.print(f"wrote {stats_out}", highlight=False)
        if fmt != Fmt.table:
            doc = {"baseline": res.baseline, "level": res.level, "rounds": res.rounds, "rule": rule_note or None,
                   "leaderboard": res.table.to_dict(orient="records")}
            if res.controlled is not None:
                doc["style_controlled"] = res.controlled.to_dict(orient="records")
                doc["coefficients"] = res.coefficients.to_dict(orient="records")
            doc["categories"] = {c: t.to_dict(orient="records") for c, t in res.categories.items()}
            if fmt == Fmt.json:
                typer.echo(json.dumps(doc, default=str, indent=2))
            else:
                typer.echo(res.table.to_csv(index=False), nl=False)
            return
        pct = f"{res.level * 100:g}%"

        def view(t):
            d = t.copy()
            d[f"{pct} CI"] = [f"-{s - lo:.1f}/+{hi - s:.1f}" if math.isfinite(lo) else "" for s, lo, hi in zip(d["score"], d["lower"], d["upper"])]
            cols = ["model", "score", f"{pct} CI", "rating", "battles"] + (["avg_tokens"] if "avg_tokens" in d else [])
            return d[cols]

        title = (f"Judge leaderboard: win rate (%) vs {res.baseline} from Bradley-Terry; {pct} bootstrap CI, {res.rounds} rounds"
                 + (f"; {rule_note}" if rule_note else ""))
        _print_frame(view(res.table), title)
        if res.controlled is not None:
            _print_frame(view(res.controlled), f"Style control ({control.value}: length and markdown density as Arena-Hard v2), {pct} CI")
            _print_frame(res.coefficients, "Style coefficients (logits per sd)", 3)
        for c, t in res.categories.items():
            _print_frame(view(t), f"Category {c}: win rate (%) vs {res.baseline}, {pct} CI")
        for n in res.notes:
            err_console.print(n, highlight=False)


@app.command("audit")
def audit(
    source: list[Path] = typer.Argument(..., help="Judgment files/folders: pairwise (both orders) or single grades (MT-Bench, arena-bench-v1)."),
    answers: Optional[Path] = typer.Option(None, "--answers", "-a", help="Answers (for the length bias)."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Baseline name (arena-hard judgment files only)."),
    registry: Optional[Path] = typer.Option(None, "--registry", "-r", help="Registry: model families from `organization`."),
    judge_name: str = typer.Option("unknown", "--judge-name", help="Single grades: the judge of files that do not name it (arena-bench-v1: gpt-4)."),
) -> None:
    """Judge audits. Pairwise: position bias (flips when swapped), length bias (win rate of the longer answer), self-preference. Single grades: length bias (grade vs answer length within a question) and self-preference."""
    from openarena.judging.answers import read_answers
    from openarena.judging.audits import length_bias, position_bias, self_preference

    with user_errors():
        _exists(*source, answers, registry)
        fam = None
        if registry is not None:
            reg = _registry(registry)
            fam = {m.name: m.organization.lower() for m in reg if m.organization}
        if _kind_of(source) == "single":
            _audit_single(source, read_answers(answers) if answers is not None else None, fam, judge_name)
            return
        from openarena.judging.pairwise import load_judgments

        recs = load_judgments(source, baseline)
        pb = position_bias(recs)
        out_console.print(
            f"Position bias: {pb.pairs} question pairs judged in both orders; verdict flips when swapped: {pb.flip:.1%} "
            f"(95% CI {pb.flip_ci[0]:.1%}-{pb.flip_ci[1]:.1%}); win<->loss reversals {pb.reversal:.1%}; judge prefers "
            f"position A both times {pb.first:.1%}, position B both times {pb.second:.1%}; same label {pb.exact:.1%}",
            highlight=False)
        if len(pb.by_judge) > 1:
            _print_frame(pb.by_judge, "Position bias per judge", 3)
        if answers is not None:
            lb = length_bias(recs, read_answers(answers))
            out_console.print(f"Length bias: the longer answer wins {lb.longer_win_rate:.1%} of {lb.games} games "
                              f"(95% CI {lb.ci[0]:.1%}-{lb.ci[1]:.1%}; ties as half, {lb.ties:.1%} ties; 50% = none)",
                              highlight=False)
        sp = self_preference(recs, fam)
        _print_frame(sp.table, "Self-preference (win rate % vs baseline)")
        out_console.print(sp.note, highlight=False)


def _audit_single(source: list[Path], ans: Any, fam: Any, judge_name: str) -> None:
    """The single-grade audits (no position bias: nothing is swapped)."""
    from openarena.judging.audits import single_length_bias, single_self_preference
    from openarena.judging.single import load_single_judgments

    recs = load_single_judgments(source, default_judge=judge_name)
    out_console.print(f"Single grades: {len(recs)} records; position bias does not apply (one answer per grading)",
                      highlight=False)
    if ans is not None:
        lb = single_length_bias(recs, ans)
        out_console.print(
            f"Length bias: of {lb.pairs:,} pairs of answers to the same question with different lengths and grades, the "
            f"longer answer got the higher grade in {lb.longer_higher:.1%} (95% CI {lb.ci[0]:.1%}-{lb.ci[1]:.1%}; "
            f"50% = none); mean within-question Spearman(grade, tokens) {lb.spearman:+.3f} over {lb.questions} "
            f"questions; {lb.missing_answers} graded records without their answer left out", highlight=False)
    else:
        out_console.print("Length bias: give --answers to measure it", highlight=False)
    sp = single_self_preference(recs, fam)
    _print_frame(sp.table, "Self-preference (mean grade 1-10)", 2)
    out_console.print(sp.note, highlight=False)


@app.command("quality")
def quality(
    benchmarks: list[str] = typer.Argument(..., help="bootstrap_stats JSONL files, each optionally FILE=NAME_MAP.json (names to the reference's)."),
    reference: Path = typer.Option(..., "--reference", help="The reference leaderboard's bootstrap stats (e.g. the arena)."),
    level: Optional[float] = typer.Option(None, "--level", help="Interval level from the samples (default: the files' lower/upper, 95%)."),
    fmt: Fmt = typer.Option(Fmt.table, "--format", "-f"),
) -> None:
    """Benchmark quality (Li et al. 2024): separability, agreement with confidence, Spearman correlation and Brier score against a reference leaderboard."""
    from openarena.judging.quality import load_name_map, quality_table, read_bootstrap_stats

    with user_errors():
        _level("--level", level)
        _exists(reference)
        for spec in benchmarks:
            path, sep, mp = spec.partition("=")
            _exists(Path(path), Path(mp) if sep else None)
        ref = read_bootstrap_stats(reference)
        items = []
        for spec in benchmarks:
            path, sep, mp = spec.partition("=")
            items.append((read_bootstrap_stats(path), load_name_map(mp) if sep else None))
        df = quality_table(items, ref, level=level, reference_level=level)
        if fmt == Fmt.csv:
            typer.echo(df.to_csv(index=False), nl=False)
            return
        if fmt == Fmt.json:
            typer.echo(df.to_json(orient="records", indent=2))
            return
        view = df[["benchmark", "models_all", "separability_all", "models", "separability", "agreement", "agreement_notebook", "spearman", "brier"]].copy()
        for c in ("separability_all", "separability", "agreement", "agreement_notebook", "spearman"):
            view[c] = 100 * view[c]
        view["brier"] = [f"{v:.4f}" if v == v else "" for v in view["brier"]]
        lv = "stored 95%" if level is None else f"{level * 100:g}%"
        _print_frame(view, f"Benchmark quality vs {ref.name} ({lv} intervals; separability/agreement/Spearman in %)", 2)
        out_console.print("agreement: +1 same order, -1 opposite, 0 benchmark overlaps, over pairs the reference separates "
                          "(blog/paper); agreement_notebook: +1 / 0 / +0.5 (arena-hard notebook)", highlight=False)
