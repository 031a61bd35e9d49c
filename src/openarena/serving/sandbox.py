"""Run a model's Python code block on the server, in a sandbox (the code arena's REPL).

Sandbox: **bubblewrap** (``bwrap``, Debian package ``bubblewrap``), the tool Flatpak uses to
confine desktop apps. It builds the sandbox from unprivileged Linux namespaces (no setuid helper,
no daemon), so the server needs no privilege to use it, and it is a single small C program that
is easy to audit and packaged by Debian. nsjail (Google) does more (cgroups, seccomp policies in
its own language) but is not in Debian stable and needs a config language of its own; firejail
is a setuid-root program with a long history of privilege-escalation bugs and a profile system
made for desktop apps. Every run:

- ``--unshare-all``: new user, pid, network, IPC, UTS and cgroup namespaces: **no network** (only
  a loopback that is down), no view of the server's processes;
- a **read-only root** (``--remount-ro /``) built from ``/usr`` (the interpreter and its
  libraries), ``/etc/fonts`` and the server's site-packages (read-only, at ``/opt/site``): the arena's data folder,
  ``/root``, ``/home``, the working tree and its secrets are **not mounted at all**;
- a private ``tmpfs`` work folder ``/work`` (the current directory, and ``/tmp``), of
  :attr:`CodeLimits.tmp_bytes` each, gone when the run ends;
- ``--die-with-parent``, ``--new-session`` (no terminal injection through TIOCSTI),
  ``--clearenv`` (no secret from the server's environment);
- when the server runs as root, bwrap itself runs as ``nobody`` (65534): a root-owned process is
  exempt from ``RLIMIT_NPROC``, and a sandbox escape should not land as root;
- resource limits set in the child before bwrap starts (:func:`_limits`), inherited by the code:
  ``RLIMIT_CPU`` (CPU seconds, then SIGXCPU/SIGKILL), ``RLIMIT_AS`` (address space: a 4 GB
  allocation fails with MemoryError), ``RLIMIT_FSIZE`` (largest file), ``RLIMIT_NOFILE``, no core
  dumps, and ``RLIMIT_NPROC`` (processes and threads: a fork bomb gets EAGAIN). The kernel counts
  RLIMIT_NPROC per user *and user namespace*: the prelude sets the per-run limit inside the
  sandbox (its own namespace, so only this run's processes count); the preexec_fn sets, for the
  ``nobody`` user, a cap on all sandboxes together. It is not set before bwrap when the server
  runs as an ordinary user, where it would count every process of that user;
- a **wall-time** limit: the whole process group is killed (SIGKILL) when it is reached; the pid
  namespace then takes every process of the run with it;
- stdout and stderr are read up to :attr:`CodeLimits.output_bytes` together; beyond that the run
  is stopped and the output marked truncated.

Images: figures left open by matplotlib (``plt.show()`` does nothing under the Agg backend) are
saved by the prelude, and every ``*.png`` in ``/work`` is returned, checked and re-encoded with
Pillow (when installed), as base64 PNG, at most :attr:`CodeLimits.max_images`.

Concurrency: :class:`CodeRunner` admits :attr:`CodeLimits.per_session` runs per session and
:attr:`CodeLimits.concurrent` in the process (asyncio semaphores); the run itself is an asyncio
subprocess, so the event loop keeps serving while code runs. These limits are per server process:
with W uvicorn workers the machine runs at most W x ``concurrent`` sandboxes.

Interpreter: this server's base Python with its site-packages bound read-only (numpy and
matplotlib work); when that interpreter lives where ``nobody`` cannot read it (pyenv under
``/root``), Debian's ``/usr/bin/python3.X`` of the same minor version.

Not (yet) done: no seccomp filter (the kernel's whole syscall surface inside namespaces is
reachable) and no cgroup: memory is bounded per process (RLIMIT_AS), so a run can hold at most
``processes x memory_bytes`` of address space (16 x 512 MiB by default); the tmpfs folders
count toward the machine's RAM.

Availability: :func:`probe` starts one empty sandbox; when bwrap is missing or cannot create
namespaces (``kernel.unprivileged_userns_clone=0``, a container without user namespaces), code
execution is disabled with a clear message and the rest of the arena works.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CodeTooLong", "CodeLimits", "RunResult", "CodeRunner", "SandboxUnavailable", "probe", "run_code", "python_blocks"]

NOBODY = 65534
SITE = "/opt/site"
MPL_CACHE = "/opt/mplcache"


class CodeTooLong(ValueError):
    """The code is longer than :attr:`CodeLimits.max_code_chars`."""


class SandboxUnavailable(RuntimeError):
    """Code execution cannot run here (bwrap missing, or no namespaces); the message says why."""


@dataclass(frozen=True)
class CodeLimits:
    """Limits of one run and of concurrent runs.

    Attributes: cpu_s (CPU seconds), wall_s (seconds of wall time), memory_bytes (address space
    per process), processes (processes + threads of the sandbox user), file_bytes (largest file
    written), open_files, output_bytes (stdout + stderr kept), tmp_bytes (size of the /work and
    /tmp tmpfs), max_code_chars, max_images, image_bytes (largest PNG returned), image_pixels,
    per_session (runs at once per session), concurrent (runs at once in this process),
    queue_s (how long a run waits for a free slot before it is refused).
    """

    cpu_s: int = 5
    wall_s: float = 10.0
    memory_bytes: int = 512 << 20
    processes: int = 16
    file_bytes: int = 16 << 20
    open_files: int = 64
    output_bytes: int = 64 << 10
    tmp_bytes: int = 64 << 20
    max_code_chars: int = 50_000
    max_images: int = 4
    image_bytes: int = 4 << 20
    image_pixels: int = 4_000_000
    per_session: int = 1
    concurrent: int = 2
    queue_s: float = 5.0


@dataclass(frozen=True)
class RunResult:
    """What a run returns: stdout/stderr (text, cut at the output limit), exit_code (the
    program's status; 128+N for a signal N), timed_out (wall limit reached), truncated (output
    cut), images (base64 PNG strings), message (a sentence for the voter: how the run ended),
    duration_s (wall seconds)."""

    stdout: str
    stderr: str
    exit_code: int | None
    timed_out: bool
    truncated: bool
    images: list[str] = field(default_factory=list)
    message: str = ""
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (the API response and what the battle's meta stores)."""
        return {
            "stdout": self.stdout, "stderr": self.stderr, "exit_code": self.exit_code, "timed_out": self.timed_out,
            "truncated": self.truncated, "images": list(self.images), "message": self.message, "duration_s": self.duration_s,
        }


# Runs inside the sandbox before the voter's code: writes it to /work/main.py (so tracebacks
# show its lines), runs it as __main__, then saves open matplotlib figures and hands the PNGs
# of /work to the server through a file the server opened and passed as an inherited fd, as JSON {name: base64}.
PRELUDE = r"""
import os, sys, shutil, resource
resource.setrlimit(resource.RLIMIT_NPROC, (%(nproc)d, %(nproc)d))
if os.path.isdir("%(site)s"):
    sys.path.insert(0, "%(site)s")
os.makedirs("/tmp/mpl", exist_ok=True)
if os.path.isdir("%(cache)s"):
    for n in os.listdir("%(cache)s"):
        if n.endswith(".json"):
            shutil.copy("%(cache)s/" + n, "/tmp/mpl/" + n)
code = sys.argv[1]
with open("/work/main.py", "w") as f:
    f.write(code)
status = 0
g = {"__name__": "__main__", "__file__": "/work/main.py", "__builtins__": __builtins__}
sys.argv = ["main.py"]
try:
    exec(compile(code, "main.py", "exec"), g)
except SystemExit as e:
    status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    if not isinstance(e.code, int) and e.code is not None:
        print(e.code, file=sys.stderr)
except BaseException:
    import traceback
    t, v, tb = sys.exc_info()
    traceback.print_exception(t, v, tb.tb_next)
    status = 1
try:
    sys.stdout.flush(); sys.stderr.flush()
except Exception:
    pass
try:
    if "matplotlib.pyplot" in sys.modules:
        plt = sys.modules["matplotlib.pyplot"]
        for i, num in enumerate(plt.get_fignums()):
            plt.figure(num).savefig("/work/figure_%%d.png" %% (i + 1), dpi=100)
    import base64, json
    out = {}
    for n in sorted(os.listdir("/work"))[:64]:
        p = os.path.join("/work", n)
        if n.lower().endswith(".png") and os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) <= %(image_bytes)d:
            with open(p, "rb") as f:
                out[n] = base64.b64encode(f.read()).decode()
        if len(out) >= %(max_images)d:
            break
    os.write(3, json.dumps(out).encode())
except BaseException:
    pass
os._exit(status)
"""


def _executable_by_all(path: str) -> bool:
    """True when every directory above ``path`` lets any user through (o+x)."""
    p = Path(path).resolve()
    for parent in list(p.parents)[:-1]:
        try:
            if not os.stat(parent).st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class _Layout:
    python: str                 # interpreter path inside the sandbox
    binds: tuple[tuple[str, str], ...]   # (host path, sandbox path), read-only
    site: str | None            # site-packages path on the host, bound at SITE
    uid: int | None             # host uid to run bwrap as (None: the server's)


def _layout() -> _Layout:
    """Which interpreter the sandbox runs and what it mounts: this server's Python (its base
    interpreter, plus the venv's site-packages read-only, for numpy/matplotlib), or Debian's
    /usr/bin/python3 of the same minor version when the base interpreter lives where the sandbox
    user cannot read it (e.g. pyenv under /root while the server runs as root)."""
    uid = NOBODY if os.geteuid() == 0 else None
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    prefix = Path(sys.base_prefix).resolve()
    binds: list[tuple[str, str]] = []
    python = str(base)
    if not str(base).startswith("/usr/"):
        if uid is None or _executable_by_all(str(prefix)):
            binds.append((str(prefix), "/opt/python"))
            python = "/opt/python/" + str(base.relative_to(prefix))
        else:
            ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
            python = f"/usr/bin/{ver}" if Path(f"/usr/bin/{ver}").exists() else "/usr/bin/python3"
    site = sysconfig.get_paths()["purelib"]
    if not Path(site).is_dir() or (uid is not None and not _executable_by_all(site)):
        site = None
    for etc in ("/etc/fonts", "/etc/ld.so.cache", "/etc/localtime"):
        if Path(etc).exists():
            binds.append((etc, etc))
    return _Layout(python=python, binds=tuple(binds), site=site, uid=uid)


def _bwrap_args(layout: _Layout, limits: CodeLimits, cache_dir: str | None, writable_cache: bool = False) -> list[str]:
    bwrap = shutil.which("bwrap") or "bwrap"
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv",
            "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
            "--symlink", "usr/sbin", "/sbin"]
    if Path("/usr/lib64").exists():
        args += ["--symlink", "usr/lib64", "/lib64"]
    for src, dst in layout.binds:
        args += ["--ro-bind", src, dst]
    if layout.site:
        args += ["--ro-bind", layout.site, SITE, "--setenv", "PYTHONPATH", SITE]  # -E runs: the prelude adds it
    if cache_dir:
        args += ["--bind" if writable_cache else "--ro-bind", cache_dir, MPL_CACHE]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
             "--size", str(limits.tmp_bytes), "--tmpfs", "/work", "--remount-ro", "/", "--chdir", "/work",
             "--setenv", "HOME", "/work", "--setenv", "PATH", "/usr/bin:/bin",
             "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONIOENCODING", "utf-8",
             "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--setenv", "PYTHONUNBUFFERED", "1",
             "--setenv", "MPLBACKEND", "Agg", "--setenv", "MPLCONFIGDIR", MPL_CACHE if writable_cache else "/tmp/mpl",
             "--setenv", "OPENBLAS_NUM_THREADS", "1", "--setenv", "OMP_NUM_THREADS", "1", "--setenv", "MKL_NUM_THREADS", "1"]
    return args


def _limits(limits: CodeLimits, uid: int | None = None):
    """The preexec_fn: drop to ``uid`` (when the server is root), then the resource limits of the
    child (and so of bwrap and the code). Done here rather than with Popen's user=/group=, which
    uvloop (uvicorn's loop) does not take."""
    def apply() -> None:
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        def lim(kind: int, soft: int, hard: int | None = None) -> None:
            resource.setrlimit(kind, (soft, soft if hard is None else hard))
        lim(resource.RLIMIT_CPU, limits.cpu_s, limits.cpu_s + 1)
        lim(resource.RLIMIT_AS, limits.memory_bytes)
        if uid is not None:  # all sandboxes together, counted on the host for the sandbox user
            # every sandbox of this host (other servers' and test runs' too) shares this count
            lim(resource.RLIMIT_NPROC, 2 * limits.processes * max(limits.concurrent, 1) + 64)
        lim(resource.RLIMIT_FSIZE, limits.file_bytes)
        lim(resource.RLIMIT_NOFILE, limits.open_files)
        lim(resource.RLIMIT_CORE, 0)
    return apply


_probed: dict[CodeLimits, str | None] = {}
_mpl_cache: str | None = None   # matplotlib's font cache built in the sandbox (CodeRunner.warm)
_warm_lock = threading.Lock()


def probe(limits: CodeLimits | None = None, timeout_s: float = 20.0) -> str | None:
    """Start one empty sandbox (once per process and limits: the answer is cached). Returns None
    when code execution works here, else the reason (a sentence for the operator's log)."""
    limits = limits or CodeLimits()
    if limits not in _probed:
        _probed[limits] = _probe(limits, timeout_s)
    return _probed[limits]


def _probe(limits: CodeLimits, timeout_s: float) -> str | None:
    if shutil.which("bwrap") is None:
        return "Code execution is disabled: bubblewrap is not installed (install the Debian package 'bubblewrap')."
    layout = _layout()
    args = _bwrap_args(layout, limits, None) + [layout.python, "-c", "print(1)"]
    try:
        r = subprocess.run(args, capture_output=True, timeout=timeout_s, preexec_fn=_limits(limits, layout.uid))
        for wait in _START_RETRIES:  # a moment at the process cap is not a missing sandbox
            if r.returncode == 0 or not _transient_start_failure(r.stderr):
                break
            time.sleep(wait)
            r = subprocess.run(args, capture_output=True, timeout=timeout_s, preexec_fn=_limits(limits, layout.uid))
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"Code execution is disabled: the sandbox could not start ({e})."
    if r.returncode != 0 or r.stdout.strip() != b"1":
        why = (r.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1][:300]
        return ("Code execution is disabled: bubblewrap could not create its namespaces "
                f"(are unprivileged user namespaces enabled? kernel.unprivileged_userns_clone=1): {why}")
    return None


def warm_matplotlib(cache_dir: str, limits: CodeLimits | None = None, timeout_s: float = 120.0) -> bool:
    """Build matplotlib's font cache once, in the sandbox, into ``cache_dir`` (later runs copy
    it: without it every run spends seconds listing fonts). Returns True when the cache exists."""
    limits = limits or CodeLimits()
    layout = _layout()
    os.makedirs(cache_dir, exist_ok=True)
    if layout.uid is not None:
        os.chown(cache_dir, layout.uid, layout.uid)
    warm = CodeLimits(**{**limits.__dict__, "cpu_s": 60, "wall_s": timeout_s})
    args = _bwrap_args(layout, warm, cache_dir, writable_cache=True) + [layout.python, "-c", "import matplotlib.pyplot"]
    try:
        subprocess.run(args, capture_output=True, timeout=timeout_s, preexec_fn=_limits(warm, layout.uid))
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(n.endswith(".json") for n in os.listdir(cache_dir))


def _check_png(data: bytes, limits: CodeLimits) -> str | None:
    """Base64 of a PNG re-encoded by Pillow, or None when it is not a valid image within limits.
    Without Pillow, only the PNG signature is checked."""
    if len(data) > limits.image_bytes or not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency of matplotlib
        return base64.b64encode(data).decode()
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > limits.image_pixels:
                return None
            im.load()
            out = io.BytesIO()
            im.save(out, format="PNG")
    except Exception:  # noqa: BLE001 - any undecodable image is dropped
        return None
    return base64.b64encode(out.getvalue()).decode()


def _harvest(images_file, limits: CodeLimits) -> list[str]:
    """The PNGs the prelude wrote into ``images_file`` (JSON {name: base64}), checked and
    re-encoded (:func:`_check_png`); at most ``limits.max_images``."""
    images_file.seek(0)
    raw = images_file.read(limits.max_images * (limits.image_bytes * 4 // 3 + 1024) + 1024)
    try:
        found = json.loads(raw.decode() or "{}")
    except ValueError:
        return []
    images = []
    if isinstance(found, dict):
        for v in list(found.values())[: limits.max_images]:
            try:
                png = _check_png(base64.b64decode(v, validate=True), limits) if isinstance(v, str) else None
            except ValueError:
                png = None
            if png:
                images.append(png)
    return images


def _message(limits: CodeLimits, code: int | None, timed_out: bool, too_much: bool, stderr: str) -> str:
    """One or two sentences for the voter: how the run ended, then which limit it hit."""
    tail = stderr[-8000:]
    if stderr.startswith("bwrap: ") and not timed_out:
        return "The sandbox could not start (the server is out of sandbox processes): try again in a moment."
    hit = None
    if "BlockingIOError" in tail or "Resource temporarily unavailable" in tail:
        hit = f"the process limit ({limits.processes} processes and threads)"
    elif "MemoryError" in tail:
        hit = f"the memory limit ({limits.memory_bytes / 2**20:,.0f} MiB)"
    if timed_out:
        main = f"Stopped: the program ran longer than the {limits.wall_s:g} s wall-time limit."
        return main + (f" It also hit {hit}." if hit else "")
    if too_much:
        return f"Stopped: the program printed more than {limits.output_bytes:,} bytes; the output is cut there."
    if code in (128 + signal.SIGXCPU, 128 + signal.SIGKILL, -signal.SIGXCPU, -signal.SIGKILL):
        return f"Stopped: the program used its {limits.cpu_s} s of CPU time."
    if hit and hit.startswith("the process"):
        return f"The program hit {hit}."
    if hit:
        return f"The program ran out of memory (limit {limits.memory_bytes / 2**20:,.0f} MiB)."
    if "Network is unreachable" in tail or "Temporary failure in name resolution" in tail or "Name or service not known" in tail:
        return "The program tried to use the network: the sandbox has none."
    if code == 0:
        return "The program finished."
    return f"The program exited with status {code}."


#: bwrap could not fork or create a namespace because the sandbox user's processes on the host
#: are at their cap for a moment (other sandboxes ending): started again after a short wait
_START_RETRIES = (0.05, 0.2, 0.5, 1.0)


def _transient_start_failure(stderr: str | bytes) -> bool:
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    return text.startswith("bwrap: ") and "Resource temporarily unavailable" in text


async def run_code(code: str, limits: CodeLimits | None = None, *, cache_dir: str | None = None) -> RunResult:
    """Run ``code`` (Python source) in a fresh sandbox and return its output.

    Runs as an asyncio subprocess (never blocks the event loop). A sandbox that cannot start
    for a moment (bwrap: EAGAIN, the sandbox user's processes on the host at their cap) is
    started again up to four times within about 2 s before the run is reported as not started.
    Raises: CodeTooLong when the code is longer than ``limits.max_code_chars``. Call
    :func:`probe` first: without bwrap this fails with OSError.
    """
    limits = limits or CodeLimits()
    if len(code) > limits.max_code_chars:
        raise CodeTooLong(f"the code is too long ({len(code):,} characters; at most {limits.max_code_chars:,})")
    result = await _run_once(code, limits, cache_dir)
    for wait in _START_RETRIES:
        if result.exit_code == 0 or result.timed_out or not _transient_start_failure(result.stderr):
            break
        await asyncio.sleep(wait)
        result = await _run_once(code, limits, cache_dir)
    return result


async def _run_once(code: str, limits: CodeLimits, cache_dir: str | None) -> RunResult:
    layout = _layout()
    prelude = PRELUDE % {"nproc": limits.processes, "site": SITE, "cache": MPL_CACHE, "image_bytes": limits.image_bytes, "max_images": limits.max_images}
    cache = cache_dir if cache_dir and os.path.isdir(cache_dir) else None
    images_file = tempfile.TemporaryFile()
    prelude = prelude.replace("os.write(3,", f"os.write({images_file.fileno()},")
    args = _bwrap_args(layout, limits, cache) + [layout.python, "-E", "-s", "-c", prelude, code]
    t0 = time.monotonic()
    try:
        os.fchmod(images_file.fileno(), 0o600)
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(images_file.fileno(),), start_new_session=True, preexec_fn=_limits(limits, layout.uid),
        )
        bufs = {"out": bytearray(), "err": bytearray()}
        state = {"too_much": False}

        def kill() -> None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

        async def pump(stream: asyncio.StreamReader, key: str) -> None:
            while True:
                chunk = await stream.read(65536)
                if not chunk:
                    return
                room = limits.output_bytes - len(bufs["out"]) - len(bufs["err"])
                if len(chunk) > room:
                    bufs[key] += chunk[: max(room, 0)]
                    if not state["too_much"]:
                        state["too_much"] = True
                        kill()
                    continue  # drain what is left in the pipe after the kill
                bufs[key] += chunk

        timed_out = False
        readers = asyncio.gather(pump(proc.stdout, "out"), pump(proc.stderr, "err"), proc.wait())
        try:
            await asyncio.wait_for(asyncio.shield(readers), timeout=limits.wall_s)
        except asyncio.TimeoutError:
            timed_out = not state["too_much"]
            kill()
            try:
                await asyncio.wait_for(readers, timeout=5.0)
            except asyncio.TimeoutError:  # pragma: no cover - a process that survives SIGKILL
                pass
        except asyncio.CancelledError:
            kill()
            raise
        code_ = proc.returncode
        images: list[str] = []
        if not timed_out and not state["too_much"]:  # read, decode and re-encode off the event loop
            images = await asyncio.to_thread(_harvest, images_file, limits)
    finally:
        images_file.close()
    stdout = bufs["out"].decode("utf-8", errors="replace")
    stderr = bufs["err"].decode("utf-8", errors="replace")
    message = _message(limits, code_, timed_out, state["too_much"], stderr)
    return RunResult(
        stdout=stdout, stderr=stderr, exit_code=code_, timed_out=timed_out, truncated=state["too_much"],
        images=images, message=message, duration_s=round(time.monotonic() - t0, 3),
    )


class RunRefused(Exception):
    """A run that was not started: ``code`` ('busy_session', 'busy') and a message for the voter."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class CodeRunner:
    """Runs code blocks for the web arena with a per-session and a global concurrency limit.

    ``available`` is False (and ``reason`` says why) when :func:`probe` failed: the run API then
    answers 503 with that reason and the page hides its Run buttons.
    """

    def __init__(self, limits: CodeLimits | None = None, *, enabled: bool = True) -> None:
        self.limits = limits or CodeLimits()
        self.reason: str | None = None if enabled else "Code execution is turned off on this server."
        if enabled:
            self.reason = probe(self.limits)
        self.available = self.reason is None
        self._warming = False
        self._global: asyncio.Semaphore | None = None
        self._sessions: dict[str, int] = {}

    def warm(self) -> None:
        """Build matplotlib's font cache once per process (blocking; call it in a thread); runs
        use it when it is ready."""
        global _mpl_cache
        with _warm_lock:
            if self._warming or _mpl_cache is not None or not self.available:
                return
            self._warming = True
        folder = tempfile.mkdtemp(prefix="openarena-mpl-")
        if warm_matplotlib(folder, self.limits):
            _mpl_cache = folder
        else:
            shutil.rmtree(folder, ignore_errors=True)

    def warm_in_background(self) -> None:
        """Start :meth:`warm` in a daemon thread (at most once)."""
        if _mpl_cache is None and not self._warming and self.available:
            threading.Thread(target=self.warm, name="openarena-mpl-warm", daemon=True).start()

    async def run(self, session: str, code: str) -> RunResult:
        """Run ``code`` for ``session``. Raises: RunRefused when the session already has
        ``per_session`` runs going or no global slot frees within ``queue_s``; SandboxUnavailable
        when code execution is off; CodeTooLong for code over the size limit."""
        if not self.available:
            raise SandboxUnavailable(self.reason or "Code execution is unavailable.")
        if self._sessions.get(session, 0) >= self.limits.per_session:
            raise RunRefused("busy_session", "A run is already going in this session: wait for it to finish.")
        if self._global is None:
            self._global = asyncio.Semaphore(self.limits.concurrent)
        self._sessions[session] = self._sessions.get(session, 0) + 1
        try:
            try:
                await asyncio.wait_for(self._global.acquire(), timeout=self.limits.queue_s)
            except asyncio.TimeoutError:
                raise RunRefused("busy", "The server is running other code right now: try again in a few seconds.") from None
            try:
                return await run_code(code, self.limits, cache_dir=_mpl_cache)
            finally:
                self._global.release()
        finally:
            n = self._sessions.get(session, 1) - 1
            if n:
                self._sessions[session] = n
            else:
                self._sessions.pop(session, None)


PYTHON_LANGS = ("python", "py", "python3")
HTML_LANGS = ("html", "htm", "xhtml")


def fenced_blocks(markdown: str, langs: tuple[str, ...]) -> list[str]:
    """The fenced code blocks of a markdown answer whose language (first word of the info
    string, any case) is in ``langs``, in order (backticks or tildes, as markdown-it parses them,
    so the k-th block here is the k-th ``language-*`` block of the rendered page). A whole HTML
    document written without a fence counts as a fenced ``html`` block, as the page shows it
    (:func:`openarena.serving.safety.fence_html_document`)."""
    from markdown_it import MarkdownIt

    from openarena.serving.safety import fence_html_document

    blocks = []
    for tok in MarkdownIt("commonmark").parse(fence_html_document(markdown or "")):
        if tok.type == "fence" and (tok.info or "").strip().split(" ")[0].lower() in langs:
            blocks.append(tok.content)
    return blocks


def python_blocks(markdown: str) -> list[str]:
    """The fenced Python blocks (```python, ```py, ```python3) of a markdown answer, in order."""
    return fenced_blocks(markdown, PYTHON_LANGS)
