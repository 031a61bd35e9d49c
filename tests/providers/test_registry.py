"""The model registry: loading the examples, and every validation error naming file/model/field."""

from __future__ import annotations

from pathlib import Path

import pytest

from openarena.demo import DEMO_REGISTRY
from openarena.errors import DataError, OpenArenaError
from openarena.providers.registry import ModelConfig, ModelRegistry, load_registry, parse_registry

ROOT = Path(__file__).resolve().parents[2]
GOOD = """
models:
  - name: alpha
    base_url: http://127.0.0.1:9/v1
  - name: beta
    base_url: https://api.example.com/v1/
    api_key_env: BETA_KEY
    model_id: beta-2024
    price: {input_per_million: 2.5, output_per_million: 10}
    anonymous: false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> DataError:
    path = write(tmp_path, text)
    with pytest.raises(DataError) as info:
        load_registry(path)
    err = info.value
    assert err.source == str(path)
    assert str(path) in str(err)
    return err


def test_examples_load() -> None:
    reg = load_registry(ROOT / "examples" / "models.yaml")
    assert "gpt-4o-2024-05-13" in reg
    gpt = reg.get("gpt-4o-2024-05-13")
    assert gpt.api_key_env == "OPENAI_API_KEY" and gpt.timeout_s == 120  # from defaults
    assert "gpt-4o-mini-pirate" in reg.names() and "gpt-4o-mini-pirate" not in reg.names(anonymous_only=True)
    demo = load_registry(DEMO_REGISTRY)
    assert all(m.api_key_env is None and m.base_url.startswith("http://127.0.0.1") for m in demo)
    from openarena.demo.mock_server import DEMO_BEHAVIOURS

    assert {m.endpoint_model for m in demo} <= set(DEMO_BEHAVIOURS)


def test_good_file(tmp_path: Path) -> None:
    reg = load_registry(write(tmp_path, GOOD))
    assert reg.names() == ["alpha", "beta"] and reg.names(anonymous_only=True) == ["alpha"]
    beta = reg.get("beta")
    assert beta.base_url == "https://api.example.com/v1"  # trailing slash dropped
    assert beta.endpoint_model == "beta-2024" and reg.get("alpha").endpoint_model == "alpha"
    assert beta.provider == "openai-compatible" and beta.weight == 1.0 and len(reg) == 2


def test_cost() -> None:
    reg = parse_registry([
        {"name": "p", "base_url": "http://x/v1", "price": {"input_per_million": 2.5, "output_per_million": 10}},
        {"name": "free", "base_url": "http://x/v1"},
    ])
    assert reg.get("p").cost(1_000_000, 0) == pytest.approx(2.5)
    assert reg.get("p").cost(2000, 500) == pytest.approx((2000 * 2.5 + 500 * 10) / 1e6)
    assert reg.get("free").cost(10**6, 10**6) == 0.0
    with pytest.raises(ValueError):
        reg.get("p").cost(-1, 0)


@pytest.mark.parametrize(
    ("entry", "field", "words"),
    [
        ("temprature: 0.5", "temprature", ["unknown key", "temperature"]),
        ("base_url: not-a-url", "base_url", ["http(s) URL"]),
        ("base_url: ftp://example.com/v1", "base_url", ["http(s) URL"]),
        ("price: {input_per_million: -1, output_per_million: 2}", "price.input_per_million", [">= 0"]),
        ("price: {input_per_million: 1}", "price.output_per_million", ["missing"]),
        ("price: {input_per_million: 1, output_per_million: 1, currency: EUR}", "price.currency", ["unknown key"]),
        ("api_key_env: sk-abc123secret", "api_key_env", ["NAME of an environment variable"]),
        ("api_key_env: 'my key'", "api_key_env", ["NAME"]),
        ("provider: anthropic", "provider", ["openai-compatible"]),
        ("temperature: 3", "temperature", ["between 0 and 2"]),
        ("weight: -1", "weight", [">= 0"]),
        ("timeout_s: 0", "timeout_s", ["> 0"]),
        ("anonymous: maybe", "anonymous", ["true or false"]),
        ("vote_target: 0", "vote_target", [">= 1"]),
    ],
)
def test_field_errors_name_file_model_field(tmp_path: Path, entry: str, field: str, words: list[str]) -> None:
    text = f"models:\n  - name: ok\n    base_url: http://h/v1\n  - name: bad-model\n    base_url: http://h/v1\n    {entry}\n"
    if entry.startswith("base_url"):
        text = f"models:\n  - name: ok\n    base_url: http://h/v1\n  - name: bad-model\n    {entry}\n"
    err = load_error(tmp_path, text)
    assert err.row == 1 and err.field == field
    msg = str(err)
    assert "row 2" in msg and f"field '{field}'" in msg and "bad-model" in msg
    for w in words:
        assert w in msg, msg
    assert "abc123secret" not in msg  # a key pasted by mistake is never echoed


def test_missing_required(tmp_path: Path) -> None:
    err = load_error(tmp_path, "models:\n  - name: a\n")
    assert (err.row, err.field) == (0, "base_url") and "required" in err.message


def test_duplicate_names(tmp_path: Path) -> None:
    err = load_error(tmp_path, GOOD + "  - name: alpha\n    base_url: http://h/v1\n")
    assert (err.row, err.field) == (2, "name") and "duplicate" in err.message and "row 0" in err.message
    with pytest.raises(DataError):
        ModelRegistry([ModelConfig(name="a", base_url="http://h"), ModelConfig(name="a", base_url="http://h")])


def test_env_expansion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OA_TEST_HOST", "10.1.2.3:8000")
    monkeypatch.delenv("OA_TEST_UNSET", raising=False)
    reg = parse_registry([
        {"name": "a", "base_url": "http://${OA_TEST_HOST}/v1"},
        {"name": "b", "base_url": "${OA_TEST_UNSET:-http://127.0.0.1:1}/v1"},
    ])
    assert reg.get("a").base_url == "http://10.1.2.3:8000/v1"
    assert reg.get("b").base_url == "http://127.0.0.1:1/v1"
    err = load_error(tmp_path, "models:\n  - name: a\n    base_url: http://${OA_TEST_UNSET}/v1\n")
    assert (err.row, err.field) == (0, "base_url") and "OA_TEST_UNSET" in str(err)


def test_defaults(tmp_path: Path) -> None:
    reg = parse_registry({"defaults": {"timeout_s": 5, "base_url": "http://h/v1"},
                          "models": [{"name": "a"}, {"name": "b", "timeout_s": 7}]})
    assert reg.get("a").timeout_s == 5 and reg.get("b").timeout_s == 7 and reg.get("a").base_url == "http://h/v1"
    err = load_error(tmp_path, "defaults:\n  timeout_s: -2\nmodels:\n  - name: a\n    base_url: http://h/v1\n")
    assert err.row is None and err.field == "defaults.timeout_s"
    err = load_error(tmp_path, "defaults:\n  name: x\nmodels: []\n")
    assert err.field == "defaults.name"


def test_file_level_errors(tmp_path: Path) -> None:
    err = load_error(tmp_path, "models:\n  - name: a\n    base_url: [unclosed\n")
    assert "invalid YAML at line" in err.message
    err = load_error(tmp_path, "modles: []\n")
    assert err.field == "modles" and err.row is None
    err = load_error(tmp_path, "just a string\n")
    assert err.field == "models"
    err = load_error(tmp_path, "models:\n  - just-a-name\n")
    assert err.row == 0 and "not a mapping" in err.message
    with pytest.raises(DataError, match="file not found"):
        load_registry(tmp_path / "nope.yaml")


def test_get_unknown_lists_names(tmp_path: Path) -> None:
    reg = load_registry(write(tmp_path, GOOD))
    with pytest.raises(OpenArenaError) as info:
        reg.get("gamma")
    assert "gamma" in str(info.value) and "alpha, beta" in str(info.value)


def test_binary_and_empty_files_are_data_errors(tmp_path: Path) -> None:
    path = tmp_path / "binary.bin"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(DataError, match="not a UTF-8 text file") as info:
        load_registry(path)
    assert info.value.source == str(path)
    err = load_error(tmp_path, "models: []\n")
    assert err.field == "models" and err.expected == "at least one model"
    assert load_error(tmp_path, "[]\n").expected == "at least one model"
    with pytest.raises(DataError, match="at least one model"):
        parse_registry({"models": []})
