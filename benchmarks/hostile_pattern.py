"""A hostile regex through the running app's API: does the server keep serving?

Starts ``app.py`` on tiny-random on 127.0.0.1 (or uses --url on this machine), presses Train in
regex mode with an expected answer that makes a backtracking engine explode (default
``(.*.*)*Q``), and while that request runs fetches the page config (what a new visitor's
browser asks for first) every half second. Prints how long the Train took and every config
fetch's latency (or its timeout).

Run: .venv/bin/python benchmarks/hostile_pattern.py [--pattern '(.*.*)*Q'] [--timeout 60] [--url ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import serve_app  # noqa: E402


def probe(url: str, pattern: str, timeout: float) -> dict:
    from gradio_client import Client

    client = Client(url, verbose=False)
    tasks = {"headers": ["prompt", "expected"], "data": [["Say yes.", pattern]]}
    job = client.submit(steps=1, batch_size=4, num_minibatches=1, max_new_tokens=16, tasks=tasks,
                        match_mode="regex", api_name="/train")
    started = time.monotonic()
    fetches: list[float | None] = []  # seconds per /config fetch; None = no answer within 5 s

    def fetch_config():
        while not job.done() and time.monotonic() - started < timeout:
            t = time.monotonic()
            try:
                with urllib.request.urlopen(url.rstrip("/") + "/config", timeout=5) as response:
                    response.read()
                fetches.append(time.monotonic() - t)
            except OSError:
                fetches.append(None)
            time.sleep(0.5)

    fetcher = threading.Thread(target=fetch_config, daemon=True)
    fetcher.start()
    while not job.done() and time.monotonic() - started < timeout:
        time.sleep(0.05)
    train_seconds = time.monotonic() - started if job.done() else None
    fetcher.join(10)
    final = ""
    if job.done():
        try:
            final = job.outputs()[-1][0]
        except Exception as exc:  # the server's refusal, if any
            final = f"{type(exc).__name__}: {exc}"
    answered = [f for f in fetches if f is not None]
    return dict(pattern=pattern, train_finished=job.done(), train_seconds=train_seconds, final_status=final[:300],
                config_fetches=len(fetches), config_answered=len(answered),
                config_p50=statistics.median(answered) if answered else None,
                config_max=max(answered) if answered else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pattern", default="(.*.*)*Q")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up on the Train after this many seconds")
    parser.add_argument("--url", help="an app already running on this machine")
    args = parser.parse_args(argv)
    if args.url and urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--url must be on this machine")
    if args.url:
        result = probe(args.url, args.pattern, args.timeout)
    else:
        with serve_app() as url:
            result = probe(url, args.pattern, args.timeout)
    print(json.dumps(result, indent=1))
    return 0 if result["train_finished"] and result["config_answered"] == result["config_fetches"] else 1


if __name__ == "__main__":
    sys.exit(main())
