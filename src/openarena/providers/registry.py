"""The model registry: which models the arena, the taggers and the judges can call, and how.

The registry is a YAML file. Its schema (every key but ``name`` and ``base_url`` is optional;
unknown keys are rejected)::

    defaults:                       # optional; merged into every model (a model's own keys win)
      timeout_s: 120
    models:                         # a list; a model's "row" in error messages is its index here
      - name: gpt-4o-2024-05-13     # arena key: unique, shown on the leaderboard
        provider: openai-compatible # the only kind for now: any server speaking the OpenAI
                                    # chat-completions protocol (OpenAI, vLLM, Ollama, OpenRouter...)
        base_url: https://api.openai.com/v1   # http(s) URL up to /v1; ${VAR} and ${VAR:-default}
                                    # are expanded from the environment when the file is loaded
        api_key_env: OPENAI_API_KEY # NAME of the environment variable that holds the key, read at
                                    # call time; the key itself never goes in this file. Omit (or
                                    # null) for local servers that take no key.
        model_id: gpt-4o-2024-05-13 # what the endpoint calls the model (default: name)
        temperature: 0.7            # 0..2       \
        max_tokens: 1024            # >= 1        | generation parameters sent with every call
        top_p: 1.0                  # (0, 1]      | (omitted ones are left to the server)
        seed: 42                    # integer     |
        extra_body: {}              # mapping merged into the request body (e.g. vLLM's top_k)
        system_prompt: null         # prepended as a system message when a conversation has none
        stream_usage: true          # ask for token usage in streams (stream_options.include_usage);
                                    # set false for servers that reject stream_options
        price:                      # USD per million tokens; omitted = not tracked (cost 0)
          input_per_million: 5.0
          output_per_million: 15.0
        organization: OpenAI        # shown on the leaderboard
        license: Proprietary
        anonymous: true             # may appear in anonymous battles
        weight: 1.0                 # sampling weight in anonymous battles, >= 0
        vote_target: 3000           # votes the model should collect; the sampler may favour a
                                    # model below its target (FastChat's SAMPLING_BOOST_MODELS)
        timeout_s: 60               # per-attempt timeout of one call, seconds (> 0)
        vision: false               # takes images (OpenAI image_url content parts); only such
                                    # models are drawn for the vision arena's image battles

A bare list of models (without ``models:``) is accepted too. See ``examples/models.yaml`` and
the demo registry ``openarena/demo/models.yaml`` (:data:`openarena.demo.DEMO_REGISTRY`, models
served by :mod:`openarena.demo.mock_server`).

Errors: :func:`load_registry` raises :class:`~openarena.errors.DataError` naming the file, the
model's index in ``models`` as the row, and the offending key as the field, with what was expected.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from openarena.errors import DataError

__all__ = ["ModelConfig", "ModelRegistry", "Price", "load_registry", "parse_registry"]

PROVIDER_KINDS = ("openai-compatible",)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Price(BaseModel):
    """Price of a model in USD per million tokens (input = prompt tokens, output = completion)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


class ModelConfig(BaseModel):
    """One model of the registry: where to call it, how, and how the arena treats it.

    See the module docstring for the meaning and range of every field. Instances are frozen;
    use ``model.model_copy(update={...})`` to derive a variant (e.g. another base_url in tests).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    provider: Literal["openai-compatible"] = "openai-compatible"
    base_url: str
    api_key_env: str | None = None
    model_id: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    extra_body: dict[str, Any] = Field(default_factory=dict)
    system_prompt: str | None = None
    stream_usage: bool = True
    price: Price | None = None
    organization: str | None = None
    license: str | None = None
    anonymous: bool = True
    weight: float = Field(default=1.0, ge=0)
    vote_target: int | None = Field(default=None, ge=1)
    timeout_s: float = Field(default=60.0, gt=0)
    vision: bool = False

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if v != v.strip() or any(ord(c) < 32 for c in v):
            raise ValueError("a name without leading/trailing spaces or control characters")
        return v

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in v):
            raise ValueError("an http(s) URL such as https://api.openai.com/v1")
        return v.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _check_env_name(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if v.startswith(("sk-", "Bearer ")) or not _ENV_NAME.match(v):
            raise ValueError(
                "the NAME of an environment variable (letters, digits, _), e.g. OPENAI_API_KEY; "
                "never the key itself"
            )
        return v

    @property
    def endpoint_model(self) -> str:
        """The model name sent to the endpoint: ``model_id`` if set, else ``name``."""
        return self.model_id or self.name

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Cost of one call in USD: tokens × price per million / 1e6 (0.0 when no price is set).

        Raises: ValueError if a token count is negative.
        """
        if prompt_tokens < 0 or completion_tokens < 0:
            raise ValueError("token counts must be >= 0")
        if self.price is None:
            return 0.0
        return (
            prompt_tokens * self.price.input_per_million
            + completion_tokens * self.price.output_per_million
        ) / 1e6


# What each key accepts, for error messages ("expected ...").
_EXPECTED: dict[str, str] = {
    "name": "a non-empty string without leading/trailing spaces",
    "provider": "one of: " + ", ".join(PROVIDER_KINDS),
    "base_url": "an http(s) URL such as https://api.openai.com/v1",
    "api_key_env": "the NAME of an environment variable, e.g. OPENAI_API_KEY, or null",
    "model_id": "a string",
    "temperature": "a number between 0 and 2",
    "max_tokens": "an integer >= 1",
    "top_p": "a number in (0, 1]",
    "seed": "an integer",
    "extra_body": "a mapping",
    "system_prompt": "a string",
    "stream_usage": "true or false",
    "price": "a mapping with input_per_million and output_per_million",
    "price.input_per_million": "a number >= 0 (USD per million tokens)",
    "price.output_per_million": "a number >= 0 (USD per million tokens)",
    "organization": "a string",
    "license": "a string",
    "anonymous": "true or false",
    "weight": "a number >= 0",
    "vote_target": "an integer >= 1",
    "timeout_s": "a number of seconds > 0",
    "vision": "true or false",
}
_KEYS = ", ".join(ModelConfig.model_fields)


def _expand_env(value: str) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}``; raises KeyError(VAR) for an unset variable."""

    def sub(m: re.Match[str]) -> str:
        var, default = m.group(1), m.group(2)
        got = os.environ.get(var)
        if got:
            return got
        if default is not None:
            return default
        raise KeyError(var)

    return _ENV_REF.sub(sub, value)


def _first_error(err: ValidationError) -> tuple[str, str, str]:
    """(field path, message, expected) of the first pydantic error."""
    e = err.errors()[0]
    loc = [str(x) for x in e["loc"] if not isinstance(x, int)]
    field = ".".join(loc) if loc else ""
    kind = e["type"]
    if kind == "extra_forbidden":
        parent = ".".join(loc[:-1])
        allowed = _KEYS if not parent else _EXPECTED.get(parent, "known keys")
        return field, f"unknown key {loc[-1]!r}", f"one of: {allowed}" if not parent else allowed
    if kind == "missing":
        return field, "required key is missing", _EXPECTED.get(field, "a value")
    msg = e["msg"]
    # Never echo what was written as api_key_env: it may be a pasted key.
    got = "" if field == "api_key_env" else f" {e.get('input')!r}"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
        return field, f"invalid value{got}", msg
    return field, f"{msg} (got{got})" if got else msg, _EXPECTED.get(field, "a valid value")


class ModelRegistry:
    """The models of one registry file, in file order, with unique names.

    Build with :func:`load_registry` (a YAML file) or :func:`parse_registry` (parsed data), or
    directly from ``ModelConfig`` objects: ``ModelRegistry([cfg1, cfg2])``.
    """

    def __init__(self, models: Iterable[ModelConfig], source: str = "") -> None:
        self.source = source
        self._models: dict[str, ModelConfig] = {}
        for i, m in enumerate(models):
            if m.name in self._models:
                raise DataError(f"duplicate model name {m.name!r}", source, i, "name", "unique names")
            self._models[m.name] = m

    def get(self, name: str) -> ModelConfig:
        """The model called ``name``. Raises: DataError (field 'name') listing the known names."""
        try:
            return self._models[name]
        except KeyError:
            known = ", ".join(self._models) or "(registry is empty)"
            raise DataError(f"unknown model {name!r}", self.source, None, "name", f"one of: {known}") from None

    def names(self, anonymous_only: bool = False) -> list[str]:
        """Model names in file order; with ``anonymous_only`` only those allowed in anonymous battles."""
        return [n for n, m in self._models.items() if m.anonymous or not anonymous_only]

    def vision_names(self, anonymous_only: bool = False) -> list[str]:
        """Names of the models marked ``vision: true`` (they take images), in file order."""
        return [n for n in self.names(anonymous_only) if self._models[n].vision]

    def models(self) -> list[ModelConfig]:
        """All models in file order."""
        return list(self._models.values())

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def __iter__(self) -> Iterator[ModelConfig]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def __repr__(self) -> str:
        return f"ModelRegistry({len(self)} models from {self.source or '<memory>'})"


def parse_registry(data: Any, source: str = "") -> ModelRegistry:
    """Validate parsed YAML/JSON data (a mapping with ``models``, or a list) into a registry.

    Raises: DataError with source, row (index in ``models``; None for file-level problems or a bad
    key in ``defaults``), field and expected value; an empty list of models is a DataError too.
    """
    defaults: Mapping[str, Any] = {}
    if isinstance(data, Mapping):
        extra = set(data) - {"models", "defaults"}
        if extra:
            raise DataError(f"unknown top-level key {sorted(extra)[0]!r}", source, None, sorted(extra)[0], "models, defaults")
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, Mapping):
            raise DataError("defaults is not a mapping", source, None, "defaults", "a mapping of model keys")
        if "name" in defaults:
            raise DataError("defaults cannot set a name", source, None, "defaults.name", "per-model names")
        data = data.get("models")
    if not isinstance(data, list):
        raise DataError(
            "no list of models", source, None, "models", "a mapping with a 'models:' list, or a list of models"
        )
    if not data:
        raise DataError("the registry has no models", source, None, "models", "at least one model")
    models: list[ModelConfig] = []
    first_row: dict[str, int] = {}
    for row, entry in enumerate(data):
        if not isinstance(entry, Mapping):
            raise DataError(f"model entry is {type(entry).__name__}, not a mapping", source, row, None, "a mapping of keys")
        merged = {**defaults, **entry}
        if isinstance(merged.get("base_url"), str):
            try:
                merged["base_url"] = _expand_env(merged["base_url"])
            except KeyError as e:
                var = e.args[0]
                raise DataError(
                    f"environment variable {var} is not set", source, row, "base_url",
                    f"{var} set, or ${{{var}:-default}} in the URL",
                ) from None
        try:
            model = ModelConfig.model_validate(merged)
        except ValidationError as err:
            field, msg, expected = _first_error(err)
            top = field.split(".")[0]
            if top in defaults and top not in entry:
                raise DataError(msg, source, None, f"defaults.{field}", expected) from None
            name = entry.get("name")
            if isinstance(name, str) and name:
                msg = f"model {name!r}: {msg}"
            raise DataError(msg, source, row, field or None, expected) from None
        if model.name in first_row:
            raise DataError(
                f"duplicate model name {model.name!r} (first at row {first_row[model.name]})",
                source, row, "name", "unique names",
            )
        first_row[model.name] = row
        models.append(model)
    return ModelRegistry(models, source)


def load_registry(path: str | os.PathLike[str]) -> ModelRegistry:
    """Read and validate a registry YAML file (schema in the module docstring).

    Raises: DataError naming the file (and the model row and field when the problem is in one
    model) if the file is missing, is not UTF-8 text, is not valid YAML, has no model, or breaks
    the schema.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError("file not found", source, expected="a model registry YAML file") from None
    except UnicodeDecodeError as e:
        raise DataError(
            f"not a UTF-8 text file (byte 0x{e.object[e.start]:02x} at offset {e.start})", source, expected="a model registry YAML file"
        ) from None
    except OSError as e:
        raise DataError(f"cannot read the file: {e.strerror}", source) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise DataError(f"invalid YAML{where}: {problem}", source, expected="valid YAML") from None
    return parse_registry(data, source)
