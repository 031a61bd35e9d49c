"""``openarena route``: routers trained on preference data, and the router benchmark."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from openarena.cli.common import err_console, fail, out_console, progress_bar, results_table, user_errors

app = typer.Typer(help="Routers trained on preference data (RouteLLM and P2L), and the router benchmark.", no_args_is_help=True, rich_markup_mode="markdown")


class Format(str, Enum):
    """--format choices."""
    table = "table"
    json = "json"
    csv = "csv"


class RouterName(str, Enum):
    """--router choices."""
    random = "random"
    length = "length"
    difficulty = "difficulty"
    sw_ranking = "sw_ranking"
    mf = "mf"
    classifier = "classifier"
    p2l = "p2l"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


@app.command("eval")
def eval_cmd(
    router: RouterName = typer.Option(..., "--router", help="The router to train and evaluate."),
    train: str = typer.Option(..., "--train", help="Training data: a correctness CSV or folder (RouteLLM format), MT-Bench judgements.jsonl, a single-grade judgment folder, or battles with prompts (clean_battle JSON/JSONL, the 55k/100k/140k preference sets, a dataset name, the arena database: db or a database URL)."),
    test: Optional[Path] = typer.Option(None, "--test", help="Test data (per-prompt quality); without it, k-fold cross-validation by prompt on --train."),
    strong: Optional[str] = typer.Option(None, "--strong", help="The strong model (a column of the data); inferred for two-model data."),
    weak: Optional[str] = typer.Option(None, "--weak", help="The weak model."),
    arena: Optional[str] = typer.Option(None, "--arena", help="Battles with prompts added to the training data of every fold (RouteLLM's arena + gold/judge augmentation)."),
    strong_models: Optional[str] = typer.Option(None, "--strong-models", help="Battles: comma-separated models counted as strong (with --weak-models); default: tiers by arena score."),
    weak_models: Optional[str] = typer.Option(None, "--weak-models", help="Battles: comma-separated models counted as weak."),
    ratings: Optional[Path] = typer.Option(None, "--ratings", help="Battles: a leaderboard CSV (model, rating) for the tiers; default: Bradley-Terry on the battles."),
    tiers: int = typer.Option(10, "--tiers", help="Battles: number of tiers (RouteLLM: 10)."),
    ties: Optional[str] = typer.Option(None, "--ties", help="Battles: half, drop or weak (default: the router's RouteLLM rule)."),
    folds: int = typer.Option(5, "--folds", help="Folds when there is no --test (2 to 20)."),
    rounds: int = typer.Option(1000, "--rounds", help="Bootstrap resamples of the test prompts (10 to 10,000)."),
    seed: int = typer.Option(0, "--seed", help="Seed (>= 0)."),
    fmt: Format = typer.Option(Format.table, "--format", help="table, json or csv."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the result here."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Also write the PGR curve (pgr.png, pgr.html) here."),
) -> None:
    """APGR, CPT(50%), CPT(80%) with bootstrap intervals, beside random, length and the oracle."""
    if not 2 <= folds <= 20:
        raise fail(f"--folds {folds}: expected 2 to 20")
    if not 10 <= rounds <= 10_000:
        raise fail(f"--rounds {rounds}: expected 10 to 10,000")
    if seed < 0:
        raise fail(f"--seed {seed}: expected a number >= 0")
    from openarena.routing.benchmark import pick_pair, plot_pgr, route_eval
    from openarena.routing.data import read_prompt_scores

    _check_battle_options(tiers, ties)
    with user_errors():
        tr = _read_training(train)
        te = read_prompt_scores(test) if test is not None else None
        ab = _read_battles(arena) if arena is not None else None
        battles = ab if ab is not None else (tr if not hasattr(tr, "pair") else None)
        ref = te if te is not None else (tr if hasattr(tr, "pair") else None)
        pair = None
        if battles is not None and ref is not None:  # (battles without test data: route_eval names what is missing)
            s_name, w_name = pick_pair(ref, strong, weak)
            pair = _tier_pair(battles, s_name, w_name, strong_models, weak_models, ratings, tiers)
        steps = 3 if te is not None else 3 * folds
        with progress_bar("training routers", steps) as advance:
            bench = route_eval(router.value, tr, te, strong=strong, weak=weak, arena=ab, pair=pair, ties=ties, folds=folds, rounds=rounds, seed=seed, progress=advance)
        main = bench.results[router.value].as_dict()
        doc = {k: main[k] for k in ("router", "apgr", "apgr_lower", "apgr_upper", "cpt50", "cpt80", "n_test")}
        doc.update(cpt50_lower=main["cpt50_lower"], cpt50_upper=main["cpt50_upper"], cpt80_lower=main["cpt80_lower"], cpt80_upper=main["cpt80_upper"],
                   strong=bench.strong, weak=bench.weak, folds=bench.folds, dropped=bench.dropped,
                   baselines={k: {x: v.as_dict()[x] for x in ("apgr", "apgr_lower", "apgr_upper", "cpt50", "cpt80")} for k, v in bench.results.items() if k != router.value})
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            plot_pgr(bench, str(out_dir / "pgr.png"), str(out_dir / "pgr.html"))
        if fmt == Format.json:
            text = json.dumps(doc, indent=1) + "\n"
        elif fmt == Format.csv:
            import pandas as pd

            cols = ["router", "apgr", "apgr_lower", "apgr_upper", "cpt50", "cpt50_lower", "cpt50_upper", "cpt80", "cpt80_lower", "cpt80_upper", "n_test"]
            text = pd.DataFrame([r for r in bench.rows()])[cols].to_csv(index=False, float_format="%.4f")
        else:
            text = None
        if text is not None:
            if output is not None:
                output.write_text(text, encoding="utf-8")
                err_console.print(f"wrote {output}", highlight=False)
            else:
                typer.echo(text, nl=False)
            return
    t = results_table(f"Routing {bench.strong} vs {bench.weak}: {bench.n_test:,} test prompts" + (f" ({bench.folds}-fold)" if bench.folds > 1 else ""), ("router", "APGR", "95% CI", "CPT(50%)", "CPT(80%)"))
    for name, r in bench.results.items():
        t.add_row(name, f"{r.apgr:.3f}", f"{r.apgr_lower:.3f} to {r.apgr_upper:.3f}", _pct(r.as_dict()["cpt50"]), _pct(r.as_dict()["cpt80"]))
    out_console.print(t)
    if bench.dropped.get("contaminated"):
        err_console.print(f"{bench.dropped['contaminated']} contaminated prompts left out (RouteLLM's list)", highlight=False)
    if bench.dropped.get("arena"):
        err_console.print(f"arena: {bench.dropped['arena']}", highlight=False)


def _check_battle_options(tiers: int, ties: Optional[str]) -> None:
    if not 2 <= tiers <= 50:
        raise fail(f"--tiers {tiers}: expected 2 to 50")
    if ties is not None and ties not in ("half", "drop", "weak"):
        raise fail(f"--ties {ties}: expected half, drop or weak")


def _read_battles(source: str):
    """Battles with prompts from a file, a dataset name or the arena database (through
    :func:`openarena.read`), as router training data."""
    import openarena
    from openarena.routing.battles import arena_battles

    data = openarena.read(source)
    if not isinstance(data, openarena.BattleTable):
        raise fail(f"{source}: aggregated pair counts carry no prompts (expected battles with prompts)")
    return arena_battles(data)


def _read_training(source: str):
    """Per-prompt quality (RouteLLM's files, judge grades) or battles with prompts."""
    from openarena.routing.battles import looks_like_battles
    from openarena.routing.data import read_prompt_scores

    return _read_battles(source) if looks_like_battles(source) else read_prompt_scores(Path(source))


def _tier_pair(battles, strong, weak, strong_models, weak_models, ratings, tiers):
    from openarena.routing.battles import read_ratings, tier_pair

    if (strong_models is None) != (weak_models is None):
        raise fail("--strong-models and --weak-models go together")
    split = (lambda v: [m.strip() for m in v.split(",") if m.strip()]) if strong_models is not None else None
    return tier_pair(battles, strong=strong, weak=weak,
                     strong_models=split(strong_models) if split else None, weak_models=split(weak_models) if split else None,
                     ratings=read_ratings(ratings) if ratings is not None else None, **({} if tiers is None else {"n_tiers": tiers}))


def _prompts_of(path: Path) -> list[str]:
    """Prompts of a routing data file, or of a JSONL with ``prompt`` (or ``turns``/``messages``:
    the first user turn) per line, or of a text file with one prompt per line."""
    from openarena.errors import DataError
    from openarena.routing.data import read_prompt_scores

    if not path.exists():
        raise fail(f"{path}: no such file or folder")
    try:
        return list(read_prompt_scores(path).prompts)
    except DataError:
        pass
    if path.is_dir():
        raise fail(f"{path}: not a routing data folder")
    out: list[str] = []
    lines = path.read_text(encoding="utf-8").split("\n")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if path.suffix not in (".jsonl", ".json"):
            out.append(line)
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise fail(f"{path}, row {i}: invalid JSON (expected one object per line with 'prompt')") from None
        p = rec.get("prompt") if isinstance(rec, dict) else None
        if p is None and isinstance(rec, dict):
            turns = rec.get("turns") or rec.get("messages") or []
            first = turns[0] if turns else None
            p = first.get("content") if isinstance(first, dict) else first
        if not isinstance(p, str):
            raise fail(f"{path}, row {i}: no 'prompt' text (or turns / messages)")
        out.append(p)
    if not out:
        raise fail(f"{path}: no prompts")
    return out


def _registry_opt(registry: Optional[Path]):
    if registry is None:
        return None
    from openarena.providers.registry import load_registry

    return load_registry(registry)


@app.command("train")
def train_cmd(
    router: RouterName = typer.Option(..., "--router", help="The router to train."),
    train: str = typer.Option(..., "--train", help="Training data (as for `route eval`, battles and the arena database included)."),
    output: Path = typer.Option(..., "-o", "--output", help="The router file to write (.npz: arrays + JSON, no pickle)."),
    strong: Optional[str] = typer.Option(None, "--strong", help="The strong model (a column of the data; for battles, the model whose tier is strong)."),
    weak: Optional[str] = typer.Option(None, "--weak", help="The weak model."),
    strong_models: Optional[str] = typer.Option(None, "--strong-models", help="Battles: comma-separated models counted as strong (with --weak-models)."),
    weak_models: Optional[str] = typer.Option(None, "--weak-models", help="Battles: comma-separated models counted as weak."),
    ratings: Optional[Path] = typer.Option(None, "--ratings", help="Battles: a leaderboard CSV (model, rating) for the tiers."),
    tiers: int = typer.Option(10, "--tiers", help="Battles: number of tiers (RouteLLM: 10)."),
    ties: Optional[str] = typer.Option(None, "--ties", help="Battles: half, drop or weak (default: the router's RouteLLM rule)."),
    embedder: Optional[str] = typer.Option(None, "--embedder", help="A registry model serving /v1/embeddings (default: offline TF-IDF + SVD)."),
    registry: Optional[Path] = typer.Option(None, "--registry", "-r", help="Model registry (for --embedder)."),
    seed: int = typer.Option(0, "--seed", help="Seed (>= 0)."),
) -> None:
    """Train a router on a whole data set and save it (for `route calibrate` and `route serve`). p2l without --strong/--weak on data with 3+ models learns every model (multi-model routing)."""
    if seed < 0:
        raise fail(f"--seed {seed}: expected a number >= 0")
    if output.suffix != ".npz":
        raise fail(f"-o {output}: the router file must end in .npz")
    if embedder and registry is None:
        raise fail("--embedder needs --registry")
    from openarena.routing.embeddings import EndpointEmbedder
    from openarena.routing.persist import save_router
    from openarena.routing.train import train_router

    _check_battle_options(tiers, ties)
    with user_errors():
        reg = _registry_opt(registry)
        emb = EndpointEmbedder(reg.get(embedder)) if embedder else None
        data = _read_training(train)
        pair = None
        if not hasattr(data, "pair") and not (router.value == "p2l" and not (strong or weak or strong_models)):
            pair = _tier_pair(data, strong, weak, strong_models, weak_models, ratings, tiers)
        r, s, w = train_router(router.value, data, strong=strong, weak=weak, embedder=emb, seed=seed, pair=pair, ties=ties)
        trained_on = {"source": str(train), "prompts": len(data)}
        if pair is not None:
            trained_on.update(tiers=pair.how, strong_models=pair.strong_models, weak_models=pair.weak_models)
        save_router(r, output, strong=s, weak=w, trained_on=trained_on)
    what = f"{s} vs {w}" if s else ("models " + ", ".join(r.models_) if pair is None else "strong vs weak tier")
    out_console.print(f"trained {router.value} on {len(data):,} {'prompts' if hasattr(data, 'pair') else 'battles'} ({what}) -> {output}", highlight=False)
    if pair is not None:
        err_console.print(f"{pair.how}: strong {', '.join(pair.strong_models)}; weak {', '.join(pair.weak_models)}", highlight=False)


def _load(path_or_name: str, train: Optional[str], strong, weak, registry):
    """A trained router: a .npz file, or a name trained now on --train."""
    from openarena.routing.persist import load_router

    p = Path(path_or_name)
    if p.suffix == ".npz":
        if train is not None:
            raise fail(f"--router {path_or_name} is a trained router file; --train {train} trains a router named by --router (e.g. --router mf)")
        r, meta = load_router(p, registry)
        return r, meta.get("strong"), meta.get("weak"), meta
    if train is None:
        raise fail(f"--router {path_or_name}: give a router file (.npz from `route train`) or --train FILE")
    from openarena.routing.train import train_router

    data = _read_training(train)  # per-prompt scores or battles, as `route train` reads them
    pair = None
    if not hasattr(data, "pair") and not (path_or_name == "p2l" and not (strong or weak)):
        pair = _tier_pair(data, strong, weak, None, None, None, None)  # tier_pair's default tiers, as `route train`
    r, s, w = train_router(path_or_name, data, strong=strong, weak=weak, pair=pair)
    return r, s, w, {"router": path_or_name}


@app.command("calibrate")
def calibrate_cmd(
    router: str = typer.Option(..., "--router", help="A router file (.npz from `route train`), or a router name with --train."),
    sample: Path = typer.Option(..., "--sample", help="Sample prompts: routing data, JSONL with 'prompt', or one prompt per line."),
    strong_fraction: float = typer.Option(..., "--strong-fraction", help="Wanted share of calls to the strong model, 0..1."),
    traffic: Optional[Path] = typer.Option(None, "--traffic", help="New prompts: report the share the threshold really sends to strong."),
    train: Optional[str] = typer.Option(None, "--train", help="Training data when --router is a name (as for `route train`: per-prompt scores, battles or the arena database, with its default tiers)."),
    strong: Optional[str] = typer.Option(None, "--strong"),
    weak: Optional[str] = typer.Option(None, "--weak"),
    registry: Optional[Path] = typer.Option(None, "--registry", "-r", help="Registry (routers embedding with an endpoint)."),
    fmt: Format = typer.Option(Format.table, "--format", help="table, json or csv (one row)."),
) -> None:
    """The threshold that sends the wanted share of the sample to the strong model, and the share it really sends on new traffic (RouteLLM#36)."""
    import math

    if not (math.isfinite(strong_fraction) and 0 <= strong_fraction <= 1):
        raise fail(f"--strong-fraction {strong_fraction:g}: expected a number in 0..1")
    from openarena.routing.routers import calibrate_threshold, strong_call_fraction

    with user_errors():
        reg = _registry_opt(registry)
        r, s, w, meta = _load(router, train, strong, weak, reg)
        if getattr(r, "models_", None) and s is None and not getattr(r, "pair_", None):
            raise fail("a multi-model p2l router routes by budget, not by threshold: nothing to calibrate")
        prompts = _prompts_of(sample)
        scores = r.score(prompts)
        th = calibrate_threshold(scores, strong_fraction)
        doc = {"router": meta.get("router"), "strong": s, "weak": w, "threshold": th, "wanted_fraction": strong_fraction,
               "sample_prompts": len(prompts), "sample_fraction": strong_call_fraction(scores, th),
               "model": f"router-{meta.get('router')}-{th:.6g}"}
        if traffic is not None:
            tp = _prompts_of(traffic)
            doc.update(traffic_prompts=len(tp), traffic_fraction=strong_call_fraction(r.score(tp), th))
    if fmt == Format.json:
        typer.echo(json.dumps(doc, indent=1))
        return
    if fmt == Format.csv:
        import csv
        import sys

        writer = csv.DictWriter(sys.stdout, fieldnames=list(doc), lineterminator="\n")
        writer.writeheader()
        writer.writerow(doc)
        return
    side = s or "the strong side"  # a router trained on battles by tiers names no strong model
    out_console.print(f"threshold {th:.6g}: sends {doc['sample_fraction']:.1%} of {len(prompts):,} sample prompts to {side} "
                      f"(wanted {strong_fraction:.1%}); model name {doc['model']}", highlight=False)
    if traffic is not None:
        out_console.print(f"on the traffic ({doc['traffic_prompts']:,} prompts) it sends {doc['traffic_fraction']:.1%} to {side}",
                          highlight=False)


@app.command("serve")
def serve_cmd(
    router_file: list[Path] = typer.Option(..., "--router-file", help="A trained router (.npz from `route train`); repeatable, one per router name."),
    registry: Path = typer.Option(..., "--registry", "-r", help="Model registry holding the models the routers choose."),
    strong: Optional[str] = typer.Option(None, "--strong", help="Registry name of the strong model (default: the name stored in the router file)."),
    weak: Optional[str] = typer.Option(None, "--weak", help="Registry name of the weak model (default: the stored name)."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8200, "--port", min=0, max=65535),
    log: Optional[Path] = typer.Option(None, "--log", help="Decision log (JSONL): router, threshold, score, chosen model, tokens, cost."),
    api_key_env: Optional[str] = typer.Option(None, "--api-key-env", help="Require Authorization: Bearer $VAR from clients."),
    max_concurrency: int = typer.Option(64, "--max-concurrency", min=1, help="Requests in flight (429 beyond)."),
) -> None:
    """An OpenAI-compatible endpoint: model router-NAME-THRESHOLD (e.g. router-mf-0.116) routes each request to the strong or weak registry model (p2l: the best model within a price budget), streaming, with a decision log."""
    import os

    from openarena.routing.server import LoadedRouter, create_route_app

    with user_errors():
        reg = _registry_opt(registry)
        loaded: dict = {}
        for f in router_file:
            r, s, w, meta = _load(str(f), None, None, None, reg)
            name = str(meta["router"])
            if name in loaded:
                raise fail(f"--router-file {f}: a second {name} router (one file per router name)")
            models = tuple(r.models_) if getattr(r, "models_", None) and s is None and not getattr(r, "pair_", None) else ()
            loaded[name] = LoadedRouter(name, r, strong or s, weak or w, models)
        key = None
        if api_key_env:
            key = os.environ.get(api_key_env, "").strip()
            if not key:
                raise fail(f"--api-key-env {api_key_env}: the variable is not set")
        api = create_route_app(loaded, reg, log_path=log, api_key=key, max_concurrency=max_concurrency)
    import uvicorn

    err_console.print(f"routing {', '.join(loaded)} on http://{host}:{port}/v1 (model router-NAME-THRESHOLD)", highlight=False)
    uvicorn.run(api, host=host, port=port, log_level="warning")
