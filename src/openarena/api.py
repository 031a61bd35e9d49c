"""The public face of OpenArena and the one leaderboard pipeline.

Every entry point goes through these functions: the command line (``openarena leaderboard``), the
web leaderboard (:mod:`openarena.serving.leaderboard_cache`) and scripts::

    >>> import openarena
    >>> battles = openarena.load("battles.csv", anony=True)          # doctest: +SKIP
    >>> board = openarena.leaderboard(battles, ci="sandwich")         # doctest: +SKIP
    >>> board.to_frame().head()                                       # doctest: +SKIP

The pipeline, in order (see ARCHITECTURE.md):

1. :func:`load`: read a source (file, folder, registry name, ``hf://`` URL, the arena's database,
   or a pandas DataFrame) into a :class:`~openarena.data.battles.BattleTable` (one row per battle)
   or :class:`~openarena.data.battles.PairCounts` (aggregated), then apply the filters in FastChat's
   order (aliases, dates, exclude, anony, dedup, min_battles), each recorded as a FilterStep.
2. :func:`prepare`: add the columns a view needs and the rows lack (style features for style
   control, category tags for category boards).
3. :func:`leaderboard` / :func:`category_leaderboards`: fit (Bradley-Terry, tie models, contextual
   BT, online Elo), intervals, rank (UB), provenance: a
   :class:`~openarena.analysis.leaderboard.Leaderboard`.

This module sits above analysis/ and storage/ and below cli/ and serving/ (tests/test_layers.py).
Errors raised here name fields and values (``min_battles=5``), never command-line flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

if TYPE_CHECKING:  # keep ``import openarena`` cheap: pandas & co. load on first use
    import pandas as pd

    from openarena.analysis.categories import CategoryBoards
    from openarena.analysis.leaderboard import Leaderboard
    from openarena.data.battles import BattleTable, PairCounts

#: ``notify(text)``: one line for people about what a step did (the CLI prints it to stderr).
Notify = Callable[[str], None]
#: default of the category views: models with at most this many votes are fitted, not shown
MIN_VOTES_SHOWN = 300


def is_database_source(source: str) -> bool:
    """Whether a SOURCE names the arena's own database: ``db`` (the configured one) or a
    database URL (``sqlite:///...``, ``postgresql://...``), not a file or ``hf://`` dataset."""
    return source == "db" or ("://" in source and not source.startswith("hf://"))


def read(source, *, named: bool = False, conversations: bool = True, progress: Callable[[int, "int | None"], None] | None = None,
         arena: str | None = None):
    """Read ``source`` without filtering it.

    Parameters:
        source: a path (clean_battle JSON/JSONL, CSV, Parquet, pair-counts JSON, a folder of them),
            a registry name (``openarena datasets``), ``hf://datasets/OWNER/NAME``, ``"db"`` (the
            configured arena database), a database URL or an open
            :class:`~openarena.storage.db.Database`, a pandas DataFrame with columns
            ``model_a, model_b, winner`` (and optionally tstamp, anony, ...), a BattleTable or a
            PairCounts (returned as they are).
        named: for the arena's database only: also read the votes of named (non-anonymous)
            battles. The arena's leaderboard counts anonymous votes only (the default), as
            LMArena does: in a named battle the voter knew the models. Votes marked not counted
            (identity leaks) are left out and reported as filter step 'identity_leak'.
        conversations: for the arena's database only: read the conversations too (needed for
            style control and category tags).
        progress: ``progress(done_bytes, total_bytes or None)`` while downloading.
        arena: only the battles of this arena ('text', 'vision', 'code'; :func:`filter_arena`);
            for the arena's database the selection is made by the database query.
    Returns: BattleTable or PairCounts.
    Raises: DataError naming the file, row and field; SourceUnavailable when a download fails.
    """
    from openarena.data.battles import BattleTable, PairCounts
    from openarena.data.schema import is_frame

    def selected(data):
        return data if arena is None else filter_arena(data, arena)

    if isinstance(source, (BattleTable, PairCounts)):
        return selected(source)
    if is_frame(source):
        return selected(BattleTable(source, source="DataFrame"))
    modes = ("anony", "named") if named else ("anony",)
    arenas = None
    if arena is not None:
        from openarena.data.schema import ARENAS
        from openarena.errors import DataError

        if arena not in ARENAS:
            raise DataError(f"unknown arena {arena!r}", field="arena", expected="one of: " + ", ".join(ARENAS))
        arenas = (arena,)
    if hasattr(source, "engine") and hasattr(source, "read"):  # an open storage Database
        from openarena.storage.reading import read_battles as read_db

        return read_db(source, modes=modes, conversations=conversations, counted_only=True, arenas=arenas)
    if isinstance(source, str) and is_database_source(source):
        from openarena.storage.db import open_database
        from openarena.storage.reading import read_battles as read_db

        db = open_database(None if source == "db" else source, create=False, run_migrations=False, checkpoints=False)  # a reader: never a new database, never new tables
        return read_db(db, modes=modes, conversations=conversations, counted_only=True, arenas=arenas)
    from openarena.data.readers import read_battles
    from openarena.data.registry import resolve

    return selected(read_battles(resolve(source, progress=progress)))


def load(
    source: "str | Path | pd.DataFrame | BattleTable | PairCounts",
    *,
    anony: bool = False,
    dedup: bool = False,
    since=None,
    until=None,
    exclude: Iterable[str] = (),
    min_battles: float = 0,
    aliases: Mapping[str, str] | None = None,
    identity_leak: bool = False,
    named: bool = False,
    progress: Callable[[int, "int | None"], None] | None = None,
    arena: str | None = None,
) -> "BattleTable | PairCounts":
    """Read ``source`` (see :func:`read`) and apply the filters; every filter asked for adds a
    FilterStep (name, removed, remaining, detail) to the result's ``steps``.

    Parameters:
        anony: keep anonymous battles only (rows need an ``anony`` column).
        dedup: keep ``dedup_tag.sampled`` battles only (FastChat's prompt de-duplication).
        since, until: UTC bounds (ISO strings, dates or Unix seconds); since inclusive, until
            exclusive.
        exclude: model keys to leave out. min_battles: drop models with fewer votes (one pass).
        aliases: {old model key: new model key}.
        identity_leak: invalidate battles whose prompt or answers name a model or vendor (needs
            conversations).
        named: database sources only, see :func:`read`.
        arena: keep the battles of one arena ('text', 'vision' or 'code'; the ``arena`` column
            of the arena's database). A source without an ``arena`` column is all text battles
            (every public dataset so far): ``arena='text'`` keeps it whole, another arena is a
            DataError.
    Returns: BattleTable (one row per battle) or PairCounts (aggregated sources).
    Raises: DataError for unreadable input, a filter the rows cannot support (naming the
        column), or identity_leak on aggregated counts.
    Source: filter order of FastChat's ``elo_analysis.py``.
    """
    from openarena.data.battles import BattleTable
    from openarena.data.filters import apply_filters
    from openarena.errors import DataError

    data = read(source, named=named, progress=progress, arena=arena)
    data = apply_filters(
        data,
        anony_only=anony,
        dedup=dedup,
        since=since,
        until=until,
        exclude=tuple(exclude or ()),
        min_battles=min_battles,
        aliases=dict(aliases) if aliases else None,
    )
    if identity_leak:
        from openarena.data.curation import identity_leak as leak

        if not isinstance(data, BattleTable):
            raise DataError("identity-leak filtering needs battle rows with conversations; this source is aggregated pair counts",
                            data.source, field="identity_leak", expected="battle rows with conversation_a/conversation_b")
        data, _ = leak(data)
    return data


def filter_arena(data, arena: str):
    """The battles of ``arena`` ('text', 'vision' or 'code'), with a FilterStep 'arena'.

    Parameters: data, a BattleTable (or PairCounts, accepted for 'text' only: aggregated public
    counts carry no arena). Rows without an ``arena`` column, or with a null arena, are text
    battles.
    Returns: BattleTable (or the PairCounts unchanged).
    Raises: DataError (field 'arena') for an unknown arena, or another arena than 'text' on a
    source that does not say.
    """
    from openarena.data.battles import BattleTable, FilterStep
    from openarena.data.schema import ARENAS
    from openarena.errors import DataError

    if arena not in ARENAS:
        raise DataError(f"unknown arena {arena!r}", field="arena", expected="one of: " + ", ".join(ARENAS))
    source = getattr(data, "source", "")
    if not isinstance(data, BattleTable):
        if arena == "text":
            return data
        raise DataError(f"aggregated pair counts carry no arena, so the {arena} arena cannot be selected", source, field="arena",
                        expected="battle rows with an arena column (e.g. the arena's database)")
    frame = data.frame
    if "arena" not in frame.columns:
        if arena == "text":
            return data.with_frame(frame, FilterStep("arena", 0, len(frame), "text: this source has no arena column, so every battle is a text battle"))
        raise DataError(f"this source has no arena column, so it holds no {arena} battles", source, field="arena",
                        expected="a source with an arena column (e.g. the arena's database), or arena text")
    keep = frame["arena"].fillna("text").astype(str).eq(arena).to_numpy()
    kept = frame.loc[keep].reset_index(drop=True)
    return data.with_frame(kept, FilterStep("arena", int((~keep).sum()), len(kept), f"{arena} arena only"))


def prepare(data, *, control: "str | Sequence[str] | None" = None, categories: "bool | Sequence[str]" = False, notify: Notify | None = None):
    """Add the columns a view needs and ``data`` lacks; returns ``data`` unchanged otherwise.

    Parameters: control, the covariates of style control (see
    :func:`openarena.ratings.covariates.expand_controls`): the style features (tokens, headers,
    lists, bold) are computed from the conversations when asked for and missing;
    categories, add the category columns (labels the source carries, then the rule taggers:
    True = the default set, or a list of names from
    :data:`openarena.data.categories.RULE_TAGGERS`);
    notify, told in one line what was added.
    Returns: the same type as ``data`` (BattleTable with more columns).
    Raises: DataError when categories are asked of aggregated pair counts.
    """
    from openarena.data.battles import BattleTable
    from openarena.errors import DataError

    say = notify or (lambda text: None)
    control, _ = split_control(control)  # per-model covariates need no column
    if control and isinstance(data, BattleTable):
        from openarena.data.schema import STYLE_FEATURES
        from openarena.ratings.covariates import expand_controls

        wanted = [f for f in expand_controls(control) if f in STYLE_FEATURES]
        if wanted and not all(f"{f}_a" in data.frame.columns for f in wanted):
            from openarena.data.style import add_style_columns

            say("computing style features (tokens, headers, lists, bold) from the conversations")
            data = add_style_columns(data)
    if categories:
        if not isinstance(data, BattleTable):
            raise DataError("categories need battle rows; this source is aggregated pair counts", data.source, field="category",
                            expected="battle rows (clean_battle JSON, CSV or Parquet with conversations or category tags)")
        from openarena.data.categories import ensure_categories

        before = set(data.frame.columns)
        data = ensure_categories(data) if categories is True else ensure_categories(data, tuple(categories))
        added = sorted(set(data.frame.columns) - before)
        if added:
            say(f"category columns added: {', '.join(added)}")
    return data


def leaderboard(
    data: "str | Path | pd.DataFrame | BattleTable | PairCounts",
    *,
    ci: str = "sandwich",
    ties: str = "half",
    control: "str | Mapping[str, Mapping[str, float]] | Sequence[str | Mapping[str, Mapping[str, float]]] | None" = None,
    anchor: str | None = None,
    rating: str = "bt",
    rounds: int = 100,
    seed: int | None = 0,
    level: float = 0.95,
    prior: float = 0.0,
    category: str | None = None,
    min_votes_shown: int | None = None,
    drop_unrated: bool = False,
    n_jobs: int | None = None,
    progress: Callable[[float], None] | None = None,
    notify: Notify | None = None,
    **fit_options: Any,
) -> "Leaderboard":
    """The leaderboard of ``data``: ratings on the Elo scale, confidence intervals, rank (UB).

    Parameters:
        data: what :func:`load` returns, or anything it reads (a pandas DataFrame with
            ``model_a, model_b, winner``; winner is model_a, model_b, tie or tie (bothbad)).
        ci: 'sandwich' (robust CLT intervals, Bradley-Terry only), 'bootstrap' or 'none'.
        ties: 'half' (FastChat), 'rao-kupper' or 'davidson' (Bradley-Terry only).
        control: what to control for. Per-battle covariates (style control): 'style',
            'length', 'markdown' or column names (comma-separated or a list); the style columns
            are computed when missing. Per-model covariates (price, latency, parameter count):
            a mapping ``{name: {model: value}}`` (e.g. ``{"log_price": {...}}``, see
            :func:`model_prices`), alone or in the list beside the names; they enter the
            contextual fit as value(model_a) - value(model_b). Models without a value are left
            out (filter step 'no_value'). A per-model covariate is collinear with the model
            identities: it needs ``prior`` > 0 (the published price control uses 1).
        anchor: 'MODEL=VALUE', 'mean' (mean = 1000) or None: mixtral-8x7b-instruct-v0.1 = 1114
            when present (LMSYS's anchor), else mean = 1000. Rank (UB) does not depend on it for
            the sandwich and bootstrap intervals of Bradley-Terry up to the anchor model's own
            uncertainty: the anchored model's interval is a point, which can move models near it
            by a place or two; compare boards with the same anchor.
        rating: 'bt' (Bradley-Terry maximum likelihood) or 'elo' (online Elo, K=4; with
            ci='bootstrap' the rating is the median of the bootstrap, as in FastChat).
        rounds, seed: bootstrap rounds and seed. level: interval coverage (0.95).
        prior: L2 penalty on the strengths (0 = plain MLE).
        category: one category's board (coding, math, hard_6, english, ...): category columns are
            added when missing, models with at most ``min_votes_shown`` votes (default 300) are
            fitted but not shown; the result's ``category`` names it and its table has
            ``rank_delta`` (overall rank (UB) - category rank (UB)).
        drop_unrated: leave out (and report as filter step 'unrated') models without a finite
            rating, e.g. a model that never lost; default False = DataError naming them.
        n_jobs: bootstrap workers. progress: called with the rounds done. notify: one-line notes.
        fit_options: model_values, coef_prior (see
            :func:`openarena.analysis.leaderboard.build_leaderboard`).
    Returns: Leaderboard (``to_frame()``, ``to_csv()``, ``plot()``, ``write(out_dir)``).
    Raises: OpenArenaError for invalid options (naming the parameter and value), DataError for
        data that cannot be rated (naming the models), ConvergenceError when a fit fails.
    Source: Bradley & Terry (1952); Chiang et al. (2024), Chatbot Arena; FastChat elo_analysis.
    """
    from dataclasses import replace

    from openarena.analysis.leaderboard import build_leaderboard

    if not _is_loaded(data):
        data = load(data)
    data, control = _with_model_values(data, control, prior, fit_options, notify)
    data = prepare(data, control=control, categories=category is not None, notify=notify)
    options = dict(rating=rating, ties=ties, ci=ci, rounds=rounds, seed=seed, anchor=anchor, level=level, prior=prior,
                   control=control, drop_unrated=drop_unrated, n_jobs=n_jobs, **fit_options)
    if category is None:
        return build_leaderboard(data, progress=progress, **options)
    from openarena.analysis.categories import category_leaderboards as boards_of

    options["drop_unrated"] = True  # category views leave out (and report) models without a finite rating there
    shown = MIN_VOTES_SHOWN if min_votes_shown is None else min_votes_shown
    board = boards_of(data, [category], min_votes_shown=shown, **options)[category]
    return replace(board.leaderboard, table=board.table)


def category_leaderboards(
    data,
    categories: "str | Sequence[str]" = "all",
    *,
    by: str | None = None,
    min_votes_shown: int | None = None,
    notify: Notify | None = None,
    progress: Callable[[float], None] | None = None,
    **options: Any,
) -> "CategoryBoards":
    """One leaderboard per category ('all' = every category the rows allow), or, with ``by``,
    per value of that column (e.g. a topic cluster), each with its rank delta against 'full'.

    Parameters: data (as :func:`leaderboard`); categories, 'all' or names; by, a column name;
    min_votes_shown, models with at most this many votes are fitted but not shown (default 300
    for categories, 0 for ``by``); options, as :func:`leaderboard` (ci, anchor, control, ...).
    Returns: CategoryBoards {name: CategoryBoard} with ``skipped`` {name: reason}.
    Raises: DataError for aggregated data, an unknown category or a missing column.
    """
    from openarena.analysis.categories import category_leaderboards as by_category
    from openarena.analysis.categories import column_leaderboards
    from openarena.data.battles import BattleTable
    from openarena.errors import DataError

    if not _is_loaded(data):
        data = load(data)
    data, options["control"] = _with_model_values(data, options.get("control"), options.get("prior", 0.0), options, notify)
    data = prepare(data, control=options.get("control"), categories=by is None, notify=notify)
    options["drop_unrated"] = True
    if by is not None:
        if not isinstance(data, BattleTable):
            raise DataError("a board per column value needs battle rows; this source is aggregated pair counts", data.source, field=by)
        return column_leaderboards(data, by, min_votes_shown=min_votes_shown or 0, progress=progress, **options)
    names = "all" if categories in ("all", ["all"]) else [categories] if isinstance(categories, str) else list(categories)
    shown = MIN_VOTES_SHOWN if min_votes_shown is None else min_votes_shown
    return by_category(data, names, min_votes_shown=shown, progress=progress, **options)


def split_control(control) -> "tuple[str | list[str] | None, dict[str, dict[str, float]]]":
    """``control`` of :func:`leaderboard` -> (per-battle covariate names as given, or None;
    per-model covariates {name: {model: value}}). Raises: DataError for a per-model value that
    is not a finite number."""
    import math
    from collections.abc import Mapping as _Mapping

    from openarena.errors import DataError

    if control is None or isinstance(control, str):
        return control, {}
    items = [control] if isinstance(control, _Mapping) else list(control)
    names: list[str] = []
    per_model: dict[str, dict[str, float]] = {}
    for item in items:
        if isinstance(item, str):
            names.append(item)
            continue
        if not isinstance(item, _Mapping):
            raise DataError(f"control item {item!r}", field="control", expected="a covariate name or {name: {model: value}}")
        for name, values in item.items():
            if not isinstance(values, _Mapping):
                raise DataError(f"per-model covariate {name!r} is not a mapping", field="control", expected="{name: {model: value}}")
            clean = {}
            for model, v in values.items():
                try:
                    x = float(v)
                except (TypeError, ValueError):
                    x = float("nan")
                if not math.isfinite(x):
                    raise DataError(f"{name} of model {model!r} is {v!r}", field="control", expected="a finite number")
                clean[str(model)] = x
            per_model[str(name)] = clean
    return (names or None), per_model


def _with_model_values(data, control, prior: float, options: dict, notify: "Notify | None"):
    """Split ``control`` (:func:`split_control`); per-model covariates go to
    ``options["model_values"]`` and the models without a value leave ``data``.
    Returns (data, per-battle control). Raises: OpenArenaError without a prior (collinear)."""
    control, per_model = split_control(control)
    if per_model:
        from openarena.errors import OpenArenaError

        if not prior > 0:
            raise OpenArenaError(f"per-model covariates ({', '.join(per_model)}) are collinear with the model identities: "
                                 "they need a prior on the strengths, e.g. prior=1 (as the published price control)")
        data = _drop_models_without(data, per_model, notify)
        options["model_values"] = {**(options.get("model_values") or {}), **per_model}
    return data, control


def _drop_models_without(data, per_model: "dict[str, dict[str, float]]", notify: "Notify | None"):
    """``data`` without the battles of models that lack a value of a per-model covariate (one
    FilterStep 'no_value')."""
    from dataclasses import replace

    from openarena.data.filters import filter_exclude

    models = getattr(data, "models", None)
    if models is None:
        from openarena.data.battles import as_pair_counts

        models = as_pair_counts(data).models
    lacking = sorted(m for m in models if any(m not in values for values in per_model.values()))
    if not lacking:
        return data
    out = filter_exclude(data, lacking)
    step = out.steps[-1]
    out = replace(out, steps=[*out.steps[:-1], replace(step, name="no_value", detail=f"no {'/'.join(per_model)} value: " + step.detail.removeprefix("excluded "))])
    if notify is not None:
        notify(f"left out {len(lacking)} model(s) without a {'/'.join(per_model)} value: {', '.join(lacking[:8])}{' ...' if len(lacking) > 8 else ''}")
    return out


def read_model_prices(path) -> "pd.DataFrame":
    """Prices per model from a price table (CSV/JSON of the arena's pricing files or litellm's
    price file; see :func:`openarena.analysis.trust.frontier.read_prices`) or from a model
    registry YAML (its models' ``price.input_per_million`` / ``output_per_million``).

    Returns: DataFrame model, input_price, output_price (USD per million tokens), source.
    Raises: DataError naming the file, row and field of an unreadable price, or a registry
    where no model has a price.
    """
    from pathlib import Path

    import pandas as pd

    from openarena.analysis.trust.frontier import read_prices

    from openarena.errors import DataError

    path = Path(path)
    if path.suffix.lower() not in (".yaml", ".yml"):
        return read_prices(path)
    from openarena.providers.registry import load_registry

    rows = [(m.name, m.price.input_per_million, m.price.output_per_million) for m in load_registry(path) if m.price is not None]
    if not rows:
        raise DataError("no model in this registry has a price", str(path), field="price", expected="price: {input_per_million, output_per_million}")
    return pd.DataFrame(rows, columns=["model", "input_price", "output_price"]).assign(source=path.name)


def model_prices(prices, *, weights: tuple[float, float] = (3.0, 1.0), log: bool = True) -> dict[str, float]:
    """{model: blended price} for ``control={"log_price": model_prices(...)}``: (w_in * input +
    w_out * output) / (w_in + w_out) USD per million tokens, log10 of it when ``log`` (the
    published price control's covariate). Models with a price of 0 are left out under log.

    Parameters: prices, a DataFrame model, input_price, output_price (USD per million tokens),
    or a price file (see :func:`openarena.analysis.trust.frontier.read_prices`); weights,
    input:output.
    Raises: DataError naming the file, row and field of an unreadable price.
    Source: LMArena's price-controlled leaderboard (Dec 2024); Artificial Analysis' 3:1 blend.
    """
    import math

    import pandas as pd

    from openarena.analysis.trust.frontier import read_prices

    if not isinstance(prices, pd.DataFrame):
        prices = read_prices(prices)
    wi, wo = weights
    out = {}
    for r in prices.drop_duplicates("model").itertuples(index=False):
        p = (wi * float(r.input_price) + wo * float(r.output_price)) / (wi + wo)
        if log:
            if p > 0:
                out[str(r.model)] = math.log10(p)
        else:
            out[str(r.model)] = p
    return out


def _is_loaded(data) -> bool:
    from openarena.data.battles import BattleTable, PairCounts

    return isinstance(data, (BattleTable, PairCounts))


def _trust_inputs(organizations, prices):
    """Check :func:`trust_report`'s ``organizations`` and ``prices`` (a price file is read with
    :func:`read_model_prices`). Raises: DataError naming the parameter and what it expects."""
    from collections.abc import Mapping as _Mapping
    from pathlib import Path

    import pandas as pd

    from openarena.errors import DataError

    if organizations is not None:
        if isinstance(organizations, (str, Path)):
            from openarena.analysis.trust.providers import read_org_map

            organizations = read_org_map([Path(organizations)])
        if not isinstance(organizations, _Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in organizations.items()):
            raise DataError("organizations must map each model to its provider", "organizations", field="organizations",
                            expected="{model: provider} (e.g. {'gpt-4o': 'OpenAI'}) or a metadata table with model and organization columns")
    if prices is not None:
        if isinstance(prices, (str, Path)):
            prices = read_model_prices(prices)
        if not isinstance(prices, pd.DataFrame) or not {"model", "input_price", "output_price"} <= set(prices.columns):
            raise DataError("prices must be a table of model, input_price, output_price", "prices", field="prices",
                            expected="a DataFrame with columns model, input_price, output_price (USD per million tokens), or a price file / registry YAML path (see read_model_prices)")
    return organizations, prices


def trust_report(
    data,
    *,
    organizations: Mapping[str, str] | None = None,
    prices: "pd.DataFrame | None" = None,
    price_weights: tuple[float, float] = (3.0, 1.0),
    provisional_votes: int | None = None,
    released_at: Mapping[str, str] | None = None,
    window: str = "7d",
    alpha: float = 0.05,
    rank_method: str = "maxz",
    level: float = 0.95,
    anchor: str | None = "mean",
):
    """The trust analyses of a vote set, side by side (the arena's Trust page): vote shares
    per provider, provisional scores, drift alarms, the cost-vs-score Pareto frontier and
    simultaneous rank intervals.

    Parameters:
        data: what :func:`load` returns or anything it reads (battle rows; a ``tstamp`` column
            enables drift and first-seen dates).
        organizations: {model: provider} (e.g. a registry's ``organization`` fields), or the
            path of a metadata table (model key and organization columns).
        prices: a price file or registry YAML path (:func:`read_model_prices`), or a
            DataFrame model, input_price, output_price in USD per million tokens (a
            registry's ``price`` fields, or
            :func:`openarena.analysis.trust.frontier.read_prices`), or None.
        price_weights: input:output weights of the blended price (3:1).
        provisional_votes: fresh votes before a score stops being provisional (default 2,000);
            released_at: {model: ISO date} of releases.
        window: drift windows ('7d'); alpha: family level of the drift alarms (Holm).
        rank_method: simultaneous intervals 'maxz', 'chi2' or 'bonferroni'; level: their
            coverage (and the board's). anchor: as for :func:`leaderboard` (rank intervals do
            not depend on it).
    Returns: :class:`~openarena.analysis.trust.report.TrustReport` (a part the data cannot
        support is named in ``missing`` with a reason code).
    Raises: DataError for unreadable data or malformed options; ConvergenceError when the
        board cannot be fitted (e.g. too few votes).
    Source: Chiang et al. (2024) (uniform intervals); Singh et al. (2025) (provider shares,
        private testing); LMArena (provisional scores, price analysis); see the modules of
        :mod:`openarena.analysis.trust`.
    """
    from openarena.analysis.trust.report import build_trust_report

    organizations, prices = _trust_inputs(organizations, prices)
    if not _is_loaded(data):
        data = load(data)
    board = leaderboard(data, ci="sandwich", anchor=anchor, level=level, drop_unrated=True, rank_intervals=rank_method)
    return build_trust_report(
        data, board, organizations=dict(organizations or {}), prices=prices, price_weights=price_weights,
        provisional_votes=provisional_votes, released_at=dict(released_at) if released_at else None, window=window, alpha=alpha,
    )


__all__ = ["MIN_VOTES_SHOWN", "category_leaderboards", "filter_arena", "is_database_source", "leaderboard", "load", "model_prices", "prepare", "read", "read_model_prices", "split_control", "trust_report"]


def redteam_leaderboard(rounds, *, ci: str = "auto", level: float = 0.95, player_prior: "float | str" = "auto", bootstrap_rounds: int = 100,
                        seed: int = 0, online: bool = False, progress: Callable[[int], None] | None = None):
    """The red-team arena's three boards (players' skill, models' robustness, targets'
    difficulty) from one extended Bradley-Terry fit.

    Parameters: rounds, a rounds file (CSV or Parquet: player, model, target, outcome win|loss
    [, tstamp]), ``'db'`` or a database URL (the arena's own rounds), a pandas DataFrame with
    those columns, or a RoundTable; the rest as in
    :func:`openarena.analysis.redteam.redteam_leaderboard`.
    Returns: RedTeamLeaderboard (``to_frame()`` with kind,name,rating,rating_q025,rating_q975,num_rounds).
    Raises: DataError for bad rows (naming file, row and field) or options; ConvergenceError when
        the fit has no finite estimate.
    Source: LMArena, "RedTeam Arena" (2024); see :mod:`openarena.ratings.extended_bt`.
    """
    from openarena.analysis.redteam import redteam_leaderboard as build
    from openarena.data.rounds import RoundTable, read_rounds, rounds_from_frame

    if isinstance(rounds, RoundTable):
        table = rounds
    elif hasattr(rounds, "columns"):
        table = rounds_from_frame(rounds)
    elif isinstance(rounds, (str, Path)) and is_database_source(str(rounds)):
        from openarena.storage.db import open_database
        from openarena.storage.rounds import read_rounds as read_db

        table = read_db(open_database(None if str(rounds) == "db" else str(rounds), create=False, run_migrations=False, checkpoints=False))
    else:
        table = read_rounds(rounds)
    return build(table, ci=ci, level=level, player_prior=player_prior, bootstrap_rounds=bootstrap_rounds, seed=seed, online=online, progress=progress)


def with_robustness(board: "Leaderboard", redteam) -> "Leaderboard":
    """``board`` with each model's red-team robustness beside its arena score: columns
    ``robustness, robustness_q025, robustness_q975, redteam_rounds`` after the board's own (NaN
    and 0 for a model never red-teamed). ``redteam``: a RedTeamLeaderboard or anything
    :func:`redteam_leaderboard` takes."""
    from dataclasses import replace

    from openarena.analysis.redteam import RedTeamLeaderboard

    rt = redteam if isinstance(redteam, RedTeamLeaderboard) else redteam_leaderboard(redteam)
    models = rt.board("model").set_index("name")
    table = board.table.copy()
    table["robustness"] = table["model"].map(models["rating"])
    table["robustness_q025"] = table["model"].map(models["rating_q025"])
    table["robustness_q975"] = table["model"].map(models["rating_q975"])
    table["redteam_rounds"] = table["model"].map(models["num_rounds"]).fillna(0).astype(int)
    return replace(board, table=table)
