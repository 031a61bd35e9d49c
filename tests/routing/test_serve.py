"""The train -> eval -> calibrate -> serve path of `openarena route` against the mock OpenAI
server over real HTTP, with no API key in the environment: routers saved and loaded without
pickle (scores identical), the mock's /v1/embeddings behind EndpointEmbedder, the router server
(router-NAME-THRESHOLD) forwarding to the chosen registry model, streaming, logging decision and
cost, refusing bad input; and a router registered as an arena contestant."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import openai
import pytest
from typer.testing import CliRunner

from openarena.cli.main import app
from openarena.demo.mock_server import Behaviour, MockServer, hashed_embedding
from openarena.errors import DataError
from openarena.providers.client import complete_chat
from openarena.providers.registry import load_registry
from openarena.routing.embeddings import EndpointEmbedder
from openarena.routing.persist import load_router, save_router
from openarena.routing.routers import ROUTERS, make_router
from openarena.routing.server import LoadedRouter, create_route_app, parse_router_model

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_keys(monkeypatch):
    for k in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(k, raising=False)


def planted(n: int = 160, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Coding prompts need the strong model (weak fails them); chat prompts both answer."""
    rng = np.random.default_rng(seed)
    prompts, qs, qw = [], [], []
    for i in range(n):
        code = i % 2 == 0
        topic = rng.choice(["sort a list", "parse json", "reverse a string", "merge dicts"] if code else
                           ["a poem about cats", "a birthday message", "a travel tip", "a joke about rain"])
        prompts.append(f"Write python code: def f(x): to {topic} (case {i})" if code else f"Please write {topic} for my friend number {i}")
        qs.append(1.0)
        qw.append(0.0 if code else 1.0)
    return prompts, np.array(qs), np.array(qw)


def write_csv(path: Path, prompts, qs, qw) -> Path:
    import pandas as pd

    pd.DataFrame({"prompt": prompts, "big-model": qs.astype(bool), "small-model": qw.astype(bool)}).to_csv(path, index=False)
    return path


def test_mock_embeddings_behind_endpoint_embedder() -> None:
    with MockServer({"embed": Behaviour.fixed("unused")}) as srv:
        emb = EndpointEmbedder(srv.model_config("embed"), batch=2)
        Z = emb.transform(["sort a list in python", "sort a list in python", "a poem about cats"])
        assert Z.shape == (3, 64) and len(srv.requests) == 2  # batches of 2 over real HTTP
        np.testing.assert_allclose(Z[0], hashed_embedding("sort a list in python"), atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0)
        assert Z[0] @ Z[1] == pytest.approx(1.0) and Z[0] @ Z[2] < 0.5
        assert srv.requests[0].body["input"] == ["sort a list in python", "sort a list in python"]
        with pytest.raises(RuntimeError, match="nobody: embeddings request failed"):
            EndpointEmbedder(srv.model_config("embed").model_copy(update={"name": "nobody", "model_id": "nobody"})).transform(["x"])
        # a router trained on endpoint embeddings is saved by reference and needs the registry to load
        prompts, qs, qw = planted(40)
        r = make_router("classifier", embedder=emb).fit(prompts, (qs > qw).astype(float))
        assert r.score(prompts[:2])[0] > r.score(prompts[:2])[1]


def test_every_router_saved_and_loaded_without_pickle(tmp_path: Path) -> None:
    prompts, qs, qw = planted(120)
    y = (qs > qw).astype(float)
    for name in ROUTERS:
        r = make_router(name, seed=3).fit(prompts, y)
        f = save_router(r, tmp_path / f"{name}.npz", strong="big-model", weak="small-model")
        r2, meta = load_router(f)
        assert meta["router"] == name and meta["strong"] == "big-model"
        np.testing.assert_allclose(r2.score(prompts[:30]), r.score(prompts[:30]), atol=1e-5)
    # a pickle inside the file is refused, not executed
    evil = tmp_path / "evil.npz"
    np.savez(evil, meta=np.frombuffer(b'{"format": "openarena-router/1", "router": "mf"}', np.uint8),
             part0=np.array([object()], dtype=object))
    with pytest.raises(DataError, match="pickles are refused"):
        load_router(evil)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a router file"):
        load_router(tmp_path / "junk.npz")
    np.savez(tmp_path / "foreign.npz", meta=np.frombuffer(b'{"format": "x"}', np.uint8))
    with pytest.raises(DataError, match="format 'x'"):
        load_router(tmp_path / "foreign.npz")


class RouteServer:
    """The router app on a free loopback port, in a thread (real HTTP)."""

    def __init__(self, app_) -> None:
        import uvicorn

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app_, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive()
            time.sleep(0.01)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


def test_train_eval_calibrate_serve_and_contestant(tmp_path: Path) -> None:
    prompts, qs, qw = planted(160)
    data = write_csv(tmp_path / "train.csv", prompts, qs, qw)
    # eval: the planted signal is learned (k-fold), far above random
    r = runner.invoke(app, ["route", "eval", "--router", "mf", "--train", str(data), "--folds", "2", "--rounds", "20", "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    # the strong model helps on half the prompts: the oracle's APGR is 0.75 (PGR 1 at 50% calls)
    assert doc["baselines"]["oracle"]["apgr"] == pytest.approx(0.75)
    assert doc["apgr"] == pytest.approx(0.75, abs=0.02) and doc["baselines"]["random"]["apgr"] < 0.6
    # train -> file
    rf = tmp_path / "mf.npz"
    r = runner.invoke(app, ["route", "train", "--router", "mf", "--train", str(data), "-o", str(rf)])
    assert r.exit_code == 0 and "trained mf on 160 prompts (big-model vs small-model)" in " ".join(r.output.split())
    # calibrate on a sample, realised fraction on other traffic
    sample = tmp_path / "sample.jsonl"
    sample.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts[:100]))
    traffic = tmp_path / "traffic.txt"
    traffic_prompts = planted(60, seed=1)[0][:60:3]  # 20 new prompts, 10 of them coding
    traffic.write_text("\n".join(traffic_prompts))
    r = runner.invoke(app, ["route", "calibrate", "--router", str(rf), "--sample", str(sample), "--strong-fraction", "0.5",
                            "--traffic", str(traffic), "--format", "json"])
    assert r.exit_code == 0, r.output
    cal = json.loads(r.output)
    router, meta = load_router(rf)
    threshold = cal["threshold"]
    t_scores = router.score(traffic_prompts)
    # the sample gets exactly what was asked; new traffic what it gets (RouteLLM#36), at most its 10 coding prompts
    assert cal["sample_fraction"] == 0.5 and cal["traffic_fraction"] == pytest.approx(float(np.mean(t_scores >= threshold)))
    assert 0.3 <= cal["traffic_fraction"] <= 0.5 and cal["traffic_prompts"] == 20
    assert cal["model"].startswith("router-mf-")

    with MockServer({"big": Behaviour.fixed("strong answer here"), "small": Behaviour.fixed("weak answer")}) as srv:
        reg_file = tmp_path / "models.yaml"
        reg_file.write_text("models:\n"
                            f"  - {{name: big, base_url: '{srv.base_url}', price: {{input_per_million: 10, output_per_million: 30}}}}\n"
                            f"  - {{name: small, base_url: '{srv.base_url}', price: {{input_per_million: 0.5, output_per_million: 1}}}}\n")
        reg = load_registry(reg_file)
        log = tmp_path / "decisions.jsonl"
        api = create_route_app({"mf": LoadedRouter("mf", router, "big", "small")}, reg, log_path=log, max_body_bytes=20_000)
        rs = RouteServer(api)
        try:
            client = openai.OpenAI(base_url=rs.base_url, api_key="unused", max_retries=0)
            code_q, chat_q = "Write python code: def f(x): to parse json (case 7)", "Please write a travel tip for my friend number 9"
            a = client.chat.completions.create(model=f"router-mf-{threshold}", messages=[{"role": "user", "content": code_q}])
            assert a.model == "big" and a.choices[0].message.content == "strong answer here"
            b = client.chat.completions.create(model=f"router-mf-{threshold}", messages=[{"role": "user", "content": chat_q}])
            assert b.model == "small" and b.choices[0].message.content == "weak answer"
            # threshold 0: everything strong; streaming passes the deltas through
            chunks = list(client.chat.completions.create(model="router-mf-0", stream=True, messages=[{"role": "user", "content": chat_q}],
                                                         stream_options={"include_usage": True}))
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert text == "strong answer here" and {c.model for c in chunks} == {"big"} and chunks[-1].usage.completion_tokens == 3
            assert [q.model for q in srv.requests] == ["big", "small", "big"] and srv.requests[2].stream
            recs = [json.loads(x) for x in log.read_text().splitlines()]
            assert [x["chosen"] for x in recs] == ["big", "small", "big"] and all(x["status"] == 200 for x in recs)
            assert recs[0]["cost_usd"] == pytest.approx((recs[0]["prompt_tokens"] * 10 + 3 * 30) / 1e6)
            assert recs[1]["score"] < threshold <= recs[0]["score"]
            # bad input: OpenAI-style errors, no model called
            n = len(srv.requests)
            with pytest.raises(openai.NotFoundError, match="router-NAME-THRESHOLD"):
                client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "x"}])
            with pytest.raises(openai.NotFoundError, match="no router 'sw_ranking'"):
                client.chat.completions.create(model="router-sw_ranking-0.5", messages=[{"role": "user", "content": "x"}])
            with pytest.raises(openai.BadRequestError, match="no user message"):
                client.chat.completions.create(model="router-mf-0.5", messages=[{"role": "system", "content": "x"}])
            with pytest.raises(openai.APIStatusError, match="larger than 20000 bytes"):
                client.chat.completions.create(model="router-mf-0.5", messages=[{"role": "user", "content": "x" * 30_000}])
            assert len(srv.requests) == n
            # a router as an arena contestant: a registry entry whose base_url is the route server
            arena = tmp_path / "arena.yaml"
            arena.write_text("models:\n"
                             f"  - {{name: router-mf, base_url: '{rs.base_url}', model_id: 'router-mf-{threshold}', organization: OpenArena}}\n"
                             f"  - {{name: small, base_url: '{srv.base_url}'}}\n")
            contestant = load_registry(arena).get("router-mf")
            res = asyncio.run(complete_chat(contestant, [{"role": "user", "content": code_q}]))
            assert res.text == "strong answer here" and res.raw_model == "big"
            r = runner.invoke(app, ["models", "check", str(arena)])
            assert r.exit_code == 0, r.output
        finally:
            rs.stop()


def test_p2l_multi_model_serves_within_budget(tmp_path: Path) -> None:
    prompts, qs, qw = planted(120)
    import pandas as pd

    mid = np.where(np.arange(120) % 4 == 0, 1.0, qw)  # the mid model solves half the coding prompts
    pd.DataFrame({"prompt": prompts, "big": qs.astype(bool), "mid": mid.astype(bool), "small": qw.astype(bool)}).to_csv(tmp_path / "d.csv", index=False)
    rf = tmp_path / "p2l.npz"
    r = runner.invoke(app, ["route", "train", "--router", "p2l", "--train", str(tmp_path / "d.csv"), "-o", str(rf)])
    assert r.exit_code == 0 and "models big, mid, small" in r.output
    router, _ = load_router(rf)
    with MockServer({m: Behaviour.fixed(f"from {m}") for m in ("big", "mid", "small")}) as srv:
        reg_file = tmp_path / "models.yaml"
        reg_file.write_text("models:\n" + "".join(
            f"  - {{name: {m}, base_url: '{srv.base_url}', price: {{input_per_million: {p}, output_per_million: {p}}}}}\n"
            for m, p in (("big", 30), ("mid", 5), ("small", 1))))
        api = create_route_app({"p2l": LoadedRouter("p2l", router, None, None, tuple(router.models_))}, load_registry(reg_file))
        rs = RouteServer(api)
        try:
            client = openai.OpenAI(base_url=rs.base_url, api_key="unused", max_retries=0)
            code_q = "Write python code: def f(x): to sort a list (case 3)"
            got = {b: client.chat.completions.create(model=f"router-p2l-{b}", messages=[{"role": "user", "content": code_q}]).model
                   for b in (100, 10, 1)}
            assert got == {100: "big", 10: "mid", 1: "small"}
            with pytest.raises(openai.BadRequestError, match="no model costs at most 0.5"):
                client.chat.completions.create(model="router-p2l-0.5", messages=[{"role": "user", "content": code_q}])
        finally:
            rs.stop()


def test_router_model_names_and_cli_errors(tmp_path: Path) -> None:
    assert parse_router_model("router-mf-0.116") == ("mf", 0.116)
    assert parse_router_model("router-sw_ranking-1e-3") == ("sw_ranking", 0.001)
    for bad in ("mf-0.1", "router-mf-", "router-MF-0.1", "router-mf-0.1x"):
        with pytest.raises(ValueError):
            parse_router_model(bad)
    r = runner.invoke(app, ["route", "train", "--router", "mf", "--train", str(tmp_path / "none.csv"), "-o", str(tmp_path / "x.npz")])
    assert r.exit_code == 2 and "no such file" in r.output
    r = runner.invoke(app, ["route", "train", "--router", "mf", "--train", "x.csv", "-o", str(tmp_path / "x.pkl")])
    assert r.exit_code == 2 and "must end in .npz" in r.output
    r = runner.invoke(app, ["route", "calibrate", "--router", "mf", "--sample", "s.txt", "--strong-fraction", "1.5"])
    assert r.exit_code == 2 and "--strong-fraction 1.5" in r.output
    reg = tmp_path / "models.yaml"
    reg.write_text("models:\n  - {name: a, base_url: 'http://127.0.0.1:9/v1'}\n")
    r = runner.invoke(app, ["route", "serve", "--router-file", str(tmp_path / "none.npz"), "-r", str(reg)])
    assert r.exit_code == 2 and "no such router file" in r.output
    prompts, qs, qw = planted(40)
    save_router(make_router("length").fit(prompts, qs), tmp_path / "len.npz", strong="big", weak="a")
    r = runner.invoke(app, ["route", "serve", "--router-file", str(tmp_path / "len.npz"), "-r", str(reg)])
    assert r.exit_code == 2 and "unknown model 'big'" in r.output  # checked before serving
