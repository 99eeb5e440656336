"""Helpers shared by the benchmark scripts: child processes, peak RSS, timing the project's
trainer stage by stage (without changing what it computes), and small table/IO utilities."""

from __future__ import annotations

import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / 1024 if sys.platform == "darwin" else rss / 1024


def machine_info() -> dict:
    import torch

    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"python": platform.python_version(), "torch": torch.__version__, "cpus": cpus, "cpu": cpu_name(),
            "kernels": kernel_path(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
            "loadavg_at_start": load, "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def kernel_path() -> str:
    """The CPU kernels this process runs: ATen's vector ISA, and oneDNN's cap when one is forced
    (``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA``; see scripts/kernel_matrix.sh)."""
    import torch

    aten = torch.backends.cpu.get_cpu_capability()
    onednn = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "default"
    return f"ATen {aten}, oneDNN max ISA {onednn}"


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), so every report says which machine it came from."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def write_report(text: str, md: str | Path | None) -> None:
    """Print a markdown report, and write it to ``md`` when given."""
    print(text)
    if md:
        Path(md).parent.mkdir(parents=True, exist_ok=True)
        Path(md).write_text(text + "\n")
        print(f"wrote {md}")


def run_child(script: Path, args: list[str], env_extra: dict | None = None, label: str = "") -> dict:
    """Run ``python script args --child-out FILE`` and return the JSON the child wrote there.

    Each side of a comparison runs in its own process, so peak RSS and allocator state are its own.
    The child's stdout/stderr go straight to ours (progress lines).
    """
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out = Path(tmp.name)
    env = {**os.environ, **(env_extra or {})}
    cmd = [sys.executable, str(script), *args, "--child-out", str(out)]
    print(f"[{label or script.name}] {' '.join(cmd[1:])}", flush=True)
    try:
        proc = subprocess.run(cmd, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"child {label} failed with exit code {proc.returncode}")
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)


def add_child_options(parser) -> None:
    """The hidden options by which a script runs one side of a comparison in its own process
    (see :func:`run_child`)."""
    import argparse

    parser.add_argument("--child", choices=("project", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)


def finish_as_child(args, project, baseline) -> bool:
    """If this process is a child (``--child``), run that side with ``args``, write its JSON to
    ``--child-out`` and return True; otherwise return False."""
    if not args.child:
        return False
    write_json(args.child_out, (project if args.child == "project" else baseline)(args))
    return True


def strip_options(argv: list[str], names: tuple[str, ...]) -> list[str]:
    """argv without the given options and their values (what a child must not see)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in names:
            skip = True
            continue
        if any(a.startswith(n + "=") for n in names):
            continue
        out.append(a)
    return out


def write_json(path: str | Path, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str))
    print(f"wrote {path}")


def mean(xs) -> float:
    xs = list(xs)
    return statistics.fmean(xs) if xs else float("nan")


def stdev(xs) -> float:
    xs = list(xs)
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def markdown_table(header: list[str], rows: list[list]) -> str:
    def cell(v):
        if isinstance(v, float):
            if v != v:
                return "n/a"
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# --- profiling ---------------------------------------------------------------------------------


@contextmanager
def torch_profile(path: Path | None, row_limit: int = 25):
    """torch.profiler over the block; prints the top ops by self CPU time (and saves them)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
        yield prof
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=row_limit)
    print(table)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(table)
        print(f"wrote {path}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_app(timeout: float = 120.0, log_path: Path | None = None, model: str = "tiny-random"):
    """Run app.py on ``model`` in a subprocess; yield its URL once it answers HTTP 200; stop it
    afterwards. Raises RuntimeError if it exits or does not answer within ``timeout`` seconds."""
    port = free_port()
    env = {**os.environ, "PPO_DEMO_MODEL": model, "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT)}
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with code {proc.returncode} before serving")
            if time.monotonic() > deadline:
                raise RuntimeError(f"app.py did not answer on {url} within {timeout:.0f} s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log_path:
            log.close()
