"""Code sandbox under attack: /healthz latency of the arena while sandboxed Python runs attack.

Starts a mock model server and the arena (uvicorn, its own process), opens two sessions whose
battles hold one answer with every attack as a Python block, then for each attack runs it in
both sessions at once (the two global sandbox slots) through ``POST /api/battles/{id}/run``
while a third client polls ``/healthz`` every 10 ms. Prints one table: per phase, the attack's
result message, its wall time, and /healthz p50 / p99 / max with the p99 ratio to the idle
baseline measured in the same run.

    .venv/bin/python bench/code_sandbox.py            # ~1 min on 2 cores
    .venv/bin/python bench/code_sandbox.py --idle-s 5
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import socket
import sys
import tempfile
import threading
import time

import httpx

ATTACKS = {
    "read /root, data, tree": "import os\nfor p in ['/root', '/work', '/home', '/etc/passwd']:\n    print(p, os.path.exists(p))\nopen('/root/.bashrc')",
    "socket": "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)",
    "fork bomb": "import os\nwhile True:\n    os.fork()",
    "endless loop": "while True:\n    pass",
    "sleep forever": "import time\nwhile True:\n    time.sleep(1)",
    "4 GB allocation": "x = bytearray(4 * 1024**3)",
    "10 MB output": "print('x' * 10_000_000)",
    "matplotlib figure": "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()",
}
MODELS = ["zephyrine-alpha-7b", "orcanova-beta-13b"]


def serve(port_q, data_dir: str) -> None:
    """Child process: mock models (echo) and the arena on free ports."""
    import uvicorn

    from openarena.demo.mock_server import Behaviour, MockServer
    from openarena.providers.registry import ModelRegistry
    from openarena.serving.app import build_state, create_app
    from openarena.serving.config import ServeSettings

    mock = MockServer({f"id-{n}": Behaviour.echo("Here: ", chunk_delay_s=0.0) for n in MODELS}).start()
    cfgs = [mock.model_config(f"id-{n}", name=n, timeout_s=10) for n in MODELS]
    s = ServeSettings(database_url=f"sqlite:///{data_dir}/arena.db", leaderboard_interval_s=3600,
                      runs_per_minute_session=1000, runs_per_minute_ip=1000, prompts_per_minute_ip=1000)
    app = create_app(state=build_state(s, registry=ModelRegistry(cfgs)), start_background=False)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port_q.put(sock.getsockname()[1])
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


def session(url: str):
    c = httpx.Client(base_url=url, timeout=120)
    token = re.search(r'name="csrf-token" content="([0-9a-f]+)"', c.get("/").text).group(1)
    h = {"x-csrf-token": token}
    bid = c.post("/api/battles", json={"mode": "anony"}, headers=h).json()["battle_id"]
    prompt = "Attacks:\n\n" + "\n\n".join(f"```python\n{code}\n```" for code in ATTACKS.values())
    c.post(f"/api/battles/{bid}/turns", json={"prompt": prompt}, headers=h).read()
    return c, h, bid


def poll(url: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(base_url=url, timeout=30) as c:
        while not stop.is_set():
            t = time.perf_counter()
            c.get("/healthz")
            out.append(time.perf_counter() - t)
            time.sleep(0.01)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--idle-s", type=float, default=3.0, help="seconds of /healthz polling with no run (baseline)")
    args = ap.parse_args()
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    with tempfile.TemporaryDirectory() as d:
        proc = ctx.Process(target=serve, args=(q, d), daemon=True)
        proc.start()
        url = f"http://127.0.0.1:{q.get(timeout=120)}"
        for _ in range(300):
            try:
                httpx.get(url + "/healthz")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        status = httpx.get(url + "/api/code/status").json()
        if not status["available"]:
            print("code execution is unavailable:", status)
            return 1
        s1, s2 = session(url), session(url)
        rows = []
        lat: list[float] = []
        stop = threading.Event()
        t = threading.Thread(target=poll, args=(url, stop, lat))
        t.start()
        time.sleep(args.idle_s)
        stop.set()
        t.join()
        base = pct(lat, 0.99)
        rows.append(("idle (baseline)", "", 0.0, len(lat), pct(lat, 0.5), base, max(lat)))
        for i, name in enumerate(ATTACKS):
            lat = []
            stop = threading.Event()
            t = threading.Thread(target=poll, args=(url, stop, lat))
            t.start()
            res: dict[int, dict] = {}
            t0 = time.perf_counter()

            def go(k, s):
                c, h, bid = s
                r = c.post(f"/api/battles/{bid}/run", json={"side": "a", "block": i}, headers=h)
                res[k] = r.json()

            runners = [threading.Thread(target=go, args=(k, s)) for k, s in enumerate((s1, s2))]
            for r in runners:
                r.start()
            for r in runners:
                r.join()
            took = time.perf_counter() - t0
            stop.set()
            t.join()
            msg = res[0].get("message") or res[0].get("error", "?")
            rows.append((name + " x2", msg, took, len(lat), pct(lat, 0.5), pct(lat, 0.99), max(lat)))
        proc.terminate()
        proc.join(10)
    print(f"\n/healthz latency while sandboxed code attacks (2 runs at once; {multiprocessing.cpu_count()} CPUs; python {sys.version.split()[0]})\n")
    print(f"| phase | result message (first run) | wall s | /healthz n | p50 ms | p99 ms | max ms | p99 / idle p99 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, msg, took, n, p50, p99, mx in rows:
        print(f"| {name} | {msg} | {took:.2f} | {n} | {p50 * 1e3:.1f} | {p99 * 1e3:.1f} | {mx * 1e3:.1f} | {p99 / base:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
