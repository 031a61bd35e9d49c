"""Can one heavy user stall the web arena for everyone else? Run by hand (loopback only):

    .venv/bin/python bench/serve_heavy.py [--heavy 1,4] [--baseline-s 20] [--src OTHER/src]

What it does, for the code of this checkout (and, with ``--src``, the same for another source
tree, e.g. an older checkout, measured in the same run for a before/after ratio):

1. starts the demo models' mock OpenAI server (``python -m openarena.demo.mock_server``,
   its own process, so that its CPU is not counted as the arena's) and the arena on the demo
   registry (``openarena serve --no-rate-limits``, its own process) on free ports;
2. light users, all the time: one client polls ``/healthz`` every ``--poll-ms`` ms, and one
   runs the normal battle flow in a loop (new side-by-side battle of demo-poet and
   demo-markdown -> one streamed turn -> vote). "light API" latency = the battle creation, the
   turn's time to its response headers, and the vote;
3. phases: light users alone for ``--baseline-s`` seconds, then with N heavy users
   (``--heavy``, default 1 then 4) each sending one 12,000-character prompt (markdown: headings,
   lists, tables, code; ``--prompt-style plain`` for plain words) to demo-echo in a direct chat (demo-echo streams the prompt back word by word, ~2,000 chunks in ~60 s) and
   reading the whole answer; the phase lasts until every heavy chat has ended;
4. per phase: the light users' p50/p99, the bytes the server sent per heavy chat, its duration,
   whether the stream ended with its ``end`` event, and the server's CPU per heavy chat (the
   server process's CPU during the phase minus the light users' share measured in the baseline,
   divided by the heavy chats).

Target (issue 8, defect 1): heavy users cannot raise the light users' p99 above 100 ms. Before
the fix one such chat took 72 s, sent 18.1 MB and 29.9 s of server CPU, and four of them pushed
/healthz p99 from 18 ms to 1.3 s. The machine is shared: the table also says how many CPUs the
other processes of the machine used during each phase.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import HOST, free_port, machine_cpu, pct, wait_http  # noqa: E402  (the load bench's helpers)
ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
WORDS = ("the arena keeps every vote in one transaction and answers each request quickly while "
         "models stream long answers side by side to voters who compare them").split()






def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process, all its threads."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK






def prompt_of(chars: int, seed: int, style: str = "markdown") -> str:
    """``chars`` characters of text: plain words, or markdown (headings, lists, emphasis, inline
    code, links, tables, code fences: what makes rendering expensive, as in real answers)."""
    rng = random.Random(seed)
    out: list[str] = []
    n = 0
    k = 0
    while n < chars:
        words = " ".join(rng.choice(WORDS) for _ in range(8))
        if style == "plain":
            block = words + " "
        else:
            k += 1
            block = rng.choice([
                f"## Part {k}\n\n{words}.\n\n",
                f"- **{words.split()[0]}** {words} with `code_{k}()` and *emphasis*\n- see [the docs](https://example.org/{k})\n\n",
                f"| model | votes | score |\n|---|---|---|\n| m{k} | {k * 7} | {1000 + k} |\n\n",
                f"```python\ndef f{k}(x):\n    return x * {k}  # {words}\n```\n\n",
                f"1. {words}\n2. > {words}\n\n",
            ])
        out.append(block)
        n += len(block)
    return "".join(out)[:chars]


class Arena:
    """The mock model server and the arena, each its own process (group)."""

    def __init__(self, src: Path | None, tmp: Path, priority: int = 0) -> None:
        env = dict(os.environ)
        if src is not None:
            env["PYTHONPATH"] = f"{src}{os.pathsep}{env.get('PYTHONPATH', '')}"
        mport, self.port = free_port(), free_port()
        env["OPENARENA_MOCK_URL"] = f"http://{HOST}:{mport}/v1"
        self.url = f"http://{HOST}:{self.port}"
        self.log = open(tmp / "server.log", "ab")
        self.mock = subprocess.Popen([sys.executable, "-m", "openarena.demo.mock_server", "--host", HOST, "--port", str(mport)],
                                     env=env, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL, start_new_session=True)
        registry = subprocess.run([sys.executable, "-c", "from openarena.demo import DEMO_REGISTRY; print(DEMO_REGISTRY)"],
                                  env=env, capture_output=True, text=True, check=True).stdout.strip()
        self.server = subprocess.Popen(
            [sys.executable, "-c", "from openarena.cli.main import run; run()", "serve", "--registry", registry, "--host", HOST,
             "--port", str(self.port), "--data-dir", str(tmp / "data"), "--no-rate-limits", "--leaderboard-interval", "3600"],
            env=env, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL, start_new_session=True, cwd=tmp,
        )
        wait_http(f"http://{HOST}:{mport}/v1/models")
        wait_http(self.url + "/healthz")
        if priority:
            for proc in (self.mock, self.server):
                for tid in os.listdir(f"/proc/{proc.pid}/task"):
                    os.setpriority(os.PRIO_PROCESS, int(tid), priority)
        self.source = subprocess.run([sys.executable, "-c", "import openarena, pathlib; print(pathlib.Path(openarena.__file__).parents[1])"],
                                     env=env, capture_output=True, text=True, check=True).stdout.strip()

    def stop(self) -> None:
        for p in (self.server, self.mock):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        self.log.close()


def session(client: httpx.Client, path: str = "/") -> dict[str, str]:
    r = client.get(path)
    r.raise_for_status()
    return {"x-csrf-token": re.search(r'name="csrf-token" content="([0-9a-f]+)"', r.text).group(1)}


def poll_health(url: str, every_s: float, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(base_url=url, timeout=30) as c:
        while not stop.is_set():
            t0 = time.perf_counter()
            c.get("/healthz")
            out.append(time.perf_counter() - t0)
            stop.wait(max(0.0, every_s - (time.perf_counter() - t0)))


def light_battles(url: str, stop: threading.Event, out: list[float], errors: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=60) as c:
        h = session(c, "/side-by-side")
        while not stop.is_set():
            t0 = time.perf_counter()
            r = c.post("/api/battles", json={"mode": "named", "model_a": "demo-poet", "model_b": "demo-markdown"}, headers=h)
            out.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors.append(f"battle {r.status_code}")
                stop.wait(0.5)
                continue
            bid = r.json()["battle_id"]
            t0 = time.perf_counter()
            with c.stream("POST", f"/api/battles/{bid}/turns", json={"prompt": "Write a haiku about arenas."}, headers=h) as s:
                out.append(time.perf_counter() - t0)
                body = b"".join(s.iter_bytes())
            if b"event: end" not in body:
                errors.append("turn without end")
            t0 = time.perf_counter()
            v = c.post(f"/api/battles/{bid}/vote", json={"winner": "tie"}, headers=h)
            out.append(time.perf_counter() - t0)
            if v.status_code != 200:
                errors.append(f"vote {v.status_code}")


def heavy_chat(url: str, prompt: str, out: list[dict]) -> None:
    with httpx.Client(base_url=url, timeout=httpx.Timeout(600, connect=10)) as c:
        h = session(c, "/direct")
        bid = c.post("/api/battles", json={"mode": "direct", "model_a": "demo-echo"}, headers=h).json()["battle_id"]
        t0 = time.perf_counter()
        n = 0
        tail = b""
        with c.stream("POST", f"/api/battles/{bid}/turns", json={"prompt": prompt}, headers=h) as s:
            for chunk in s.iter_raw():
                n += len(chunk)
                tail = (tail + chunk)[-4096:]
        out.append({"bytes": n, "seconds": time.perf_counter() - t0, "ended": b"event: end" in tail})


def phase(arena: Arena, n_heavy: int, min_s: float, poll_s: float, prompt_chars: int, style: str) -> dict:
    stop = threading.Event()
    health: list[float] = []
    light: list[float] = []
    errors: list[str] = []
    chats: list[dict] = []
    cpu0, all0, t0 = proc_cpu(arena.server.pid), machine_cpu(), time.perf_counter()
    lights = [threading.Thread(target=poll_health, args=(arena.url, poll_s, stop, health)),
              threading.Thread(target=light_battles, args=(arena.url, stop, light, errors))]
    for t in lights:
        t.start()
    heavies = [threading.Thread(target=heavy_chat, args=(arena.url, prompt_of(prompt_chars, i, style), chats)) for i in range(n_heavy)]
    for t in heavies:
        t.start()
    for t in heavies:
        t.join()
    elapsed = time.perf_counter() - t0
    if elapsed < min_s:
        time.sleep(min_s - elapsed)
    stop.set()
    for t in lights:
        t.join()
    wall = time.perf_counter() - t0
    server_cpu = proc_cpu(arena.server.pid) - cpu0
    others = (machine_cpu() - all0 - server_cpu - 0.0) / wall
    return {"heavy": n_heavy, "wall": wall, "health": health, "light": light, "errors": errors, "chats": chats,
            "server_cpu": server_cpu, "other_cpus": others}


def run_code(label: str, src: Path | None, args) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="oa-heavy-") as tmp:
        arena = Arena(src, Path(tmp), args.priority)
        try:
            print(f"[{label}] arena from {arena.source} on {arena.url}", file=sys.stderr)
            time.sleep(args.warmup_s)  # let the first leaderboard computation pass
            rows = [phase(arena, 0, args.baseline_s, args.poll_ms / 1000, args.prompt_chars, args.prompt_style)]
            for n in args.heavy:
                print(f"[{label}] {n} heavy user(s)...", file=sys.stderr)
                rows.append(phase(arena, n, 5, args.poll_ms / 1000, args.prompt_chars, args.prompt_style))
        finally:
            arena.stop()
    base_rate = rows[0]["server_cpu"] / rows[0]["wall"]  # the light users' CPU per second
    for r in rows:
        r["code"] = label
        r["heavy_cpu"] = (r["server_cpu"] - base_rate * r["wall"]) / r["heavy"] if r["heavy"] else float("nan")
    return rows


def fmt_row(r: dict) -> list[str]:
    chats = r["chats"]
    mean = (lambda k: sum(c[k] for c in chats) / len(chats)) if chats else (lambda k: float("nan"))
    return [
        r["code"], str(r["heavy"]), f"{r['wall']:.0f}",
        f"{pct(r['health'], 0.5):.1f}", f"{pct(r['health'], 0.99):.1f}", f"{len(r['health'])}",
        f"{pct(r['light'], 0.5):.1f}", f"{pct(r['light'], 0.99):.1f}", f"{len(r['light'])}",
        "-" if not chats else f"{mean('bytes') / 1e6:.3f}",
        "-" if not chats else f"{mean('seconds'):.1f}",
        "-" if not chats else f"{r['heavy_cpu']:.2f}",
        "-" if not chats else f"{sum(c['ended'] for c in chats)}/{len(chats)}",
        f"{r['other_cpus']:.2f}",
        str(len(r["errors"])),
    ]


HEADER = ["code", "heavy users", "phase s", "/healthz p50 ms", "/healthz p99 ms", "n", "light API p50 ms", "light API p99 ms", "n",
          "MB sent / heavy chat", "s / heavy chat", "server CPU s / heavy chat", "ended with end event", "other CPUs busy", "light errors"]


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADER)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(HEADER, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--heavy", default="1,4", help="heavy users per phase, comma-separated (default 1,4)")
    p.add_argument("--baseline-s", type=float, default=20.0, help="seconds of the light-users-only phase")
    p.add_argument("--poll-ms", type=float, default=50.0, help="/healthz polling period")
    p.add_argument("--prompt-chars", type=int, default=12_000, help="characters of a heavy prompt")
    p.add_argument("--prompt-style", choices=("markdown", "plain"), default="markdown",
                   help="markdown (default: headings, lists, tables, code, as real answers have) or plain words")
    p.add_argument("--warmup-s", type=float, default=5.0, help="seconds between the server's start and the first phase")
    p.add_argument("--priority", type=int, default=0,
                   help="nice value for the server, the mock and this client (negative needs root): on a shared machine, "
                        "a negative value approximates a machine of its own; the table says which was used")
    p.add_argument("--src", type=Path, default=None, help="another source tree (its src/ folder) to measure the same way, e.g. an older checkout")
    args = p.parse_args()
    args.heavy = [int(x) for x in args.heavy.split(",") if x.strip()]
    if args.priority:
        os.setpriority(os.PRIO_PROCESS, 0, args.priority)
    results = run_code("this checkout", None, args)
    if args.src is not None:
        results += run_code(f"--src {args.src}", args.src.resolve(), args)
    print(f"heavy prompt: {args.prompt_chars:,} characters of {args.prompt_style} to demo-echo (direct chat); /healthz every {args.poll_ms:g} ms; "
          f"nice {args.priority}; machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print_table([fmt_row(r) for r in results])
    worst = max(pct(r["health"] + r["light"], 0.99) for r in results if r["code"] == "this checkout" and r["heavy"])
    print(f"\nthis checkout: worst light-user p99 with heavy users = {worst:.1f} ms (target < 100 ms)")


if __name__ == "__main__":
    main()
