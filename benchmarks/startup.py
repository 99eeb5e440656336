"""App start-up time: seconds from launching ``python app.py`` until the page answers HTTP 200.

Two runs by default:

* ``first``: an empty temporary ``PPO_DEMO_CACHE``, so the embedded GGUF is de-quantised and
  saved as safetensors on this start (the app loads the model in the background, so the page
  may answer before that finishes; the time until the converted model appears in the cache is
  reported as ``model_cached_s``);
* ``cached``: the same cache directory again, now filled.

Each run gets a free port (``GRADIO_SERVER_PORT``), is polled every ``--poll`` seconds, and is
stopped (its own process group) once the page has answered, or after ``--timeout``.
``--model`` sets ``PPO_DEMO_MODEL`` (e.g. ``tiny-random`` for a quick check; nothing is cached
then, so both runs measure the same thing).

    python benchmarks/startup.py --model tiny-random
    python benchmarks/startup.py --json benchmarks/results/startup.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, free_port, machine_info, markdown_table, write_json  # noqa: E402

MODEL_CACHE_SUBDIR = "smollm2-135m-instruct"  # where ppo_demo.models caches the converted GGUF


def http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError, socket.timeout, OSError):
        return None


def run_once(label: str, cache_dir: Path, args) -> dict:
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "PPO_DEMO_CACHE": str(cache_dir), "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    if args.model:
        env["PPO_DEMO_MODEL"] = args.model
    url = f"http://127.0.0.1:{port}/"
    log_path = Path(tempfile.gettempdir()) / f"startup_{label}_{port}.log"
    marker = cache_dir / MODEL_CACHE_SUBDIR / "config.json"
    had_cache = marker.is_file()
    # Only the embedded default model is converted into the cache; others have nothing to wait for.
    converts = (args.model or "").strip().lower() in ("", MODEL_CACHE_SUBDIR) and not had_cache
    with log_path.open("w") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen([args.python, str(args.app)], cwd=str(args.app.parent), env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        http_s = cached_s = None
        status = None
        try:
            while time.perf_counter() - t0 < args.timeout:
                if proc.poll() is not None:
                    break
                if cached_s is None and converts and marker.is_file():
                    cached_s = time.perf_counter() - t0
                if http_s is None:
                    status = http_status(url)
                    if status == 200:
                        http_s = time.perf_counter() - t0
                done_waiting_for_cache = not converts or cached_s is not None or not args.wait_for_model
                if http_s is not None and done_waiting_for_cache:
                    break
                time.sleep(args.poll)
        finally:
            exit_code = proc.poll()
            if exit_code is None:
                os.killpg(proc.pid, signal.SIGTERM)  # the group of the app we started, nothing else
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
    tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
    result = {"run": label, "http_200_s": http_s, "model_cached_s": cached_s, "cache_was_filled": had_cache,
              "port": port, "exited_early_with": exit_code, "last_status": status, "log": str(log_path),
              "log_tail": tail}
    shown = f"{http_s:.2f}s" if http_s is not None else f"no 200 within {args.timeout:.0f}s (last status {status})"
    print(f"[{label}] HTTP 200 after {shown}"
          + (f"; converted model cached after {cached_s:.2f}s" if cached_s is not None else ""), flush=True)
    if http_s is None:
        print("\n".join(tail))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", type=Path, default=ROOT / "app.py")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--model", default=None, help="PPO_DEMO_MODEL for the app (default: the app's default)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="start from this cache directory instead of an empty temporary one")
    parser.add_argument("--runs", default="first,cached", help="which runs, in order: first, cached")
    parser.add_argument("--repeat", type=int, default=1, help="cached runs to repeat")
    parser.add_argument("--timeout", type=float, default=240.0)
    parser.add_argument("--poll", type=float, default=0.1)
    parser.add_argument("--no-wait-for-model", dest="wait_for_model", action="store_false",
                        help="in the first run, stop at HTTP 200 without waiting for the model cache")
    parser.add_argument("--keep-cache", action="store_true", help="keep the temporary cache directory")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if not args.app.is_file():
        sys.exit(f"error: {args.app} does not exist")

    tmp = None
    cache = args.cache_dir
    if cache is None:
        tmp = Path(tempfile.mkdtemp(prefix="ppo_startup_cache_"))
        cache = tmp
    results = []
    try:
        for run in [r.strip() for r in args.runs.split(",") if r.strip()]:
            for i in range(args.repeat if run == "cached" else 1):
                label = run if run != "cached" or args.repeat == 1 else f"cached{i + 1}"
                results.append(run_once(label, cache, args))
    finally:
        if tmp is not None and not args.keep_cache:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(markdown_table(["run", "HTTP 200 s", "model converted+cached s", "cache filled before"],
                         [[r["run"], r["http_200_s"] if r["http_200_s"] is not None else "timeout",
                           r["model_cached_s"] if r["model_cached_s"] is not None else "-",
                           r["cache_was_filled"]] for r in results]))
    if args.json:
        write_json(args.json, {"args": {k: str(v) for k, v in vars(args).items()}, "runs": results,
                               "machine": machine_info()})
    return 0 if all(r["http_200_s"] is not None for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
