"""Load test: N concurrent API clients against the app on tiny-random.

Starts ``app.py`` with PPO_DEMO_MODEL=tiny-random on a free port of 127.0.0.1 (or uses --url),
then N gradio_client clients (N separate sessions) each press Train (2 steps) and then Compare,
all at once. Model events share one queue slot, so the later clients wait: the table shows
each request's queue wait (submit -> the server starts it) and total time, then min / median /
max over all clients.

Run: .venv/bin/python benchmarks/load_test.py [--clients 6] [--steps 2] [--url http://...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import serve_app  # noqa: E402  (also used by tests/test_load.py as load_test.serve_app)

SMALL = dict(batch_size=4, num_minibatches=2, max_new_tokens=6)
STARTED = {"PROCESSING", "ITERATING", "PROGRESS", "FINISHED"}


@dataclass
class Timing:
    wait: float | None = None  # submit -> the server started the event
    total: float | None = None  # submit -> last output
    outputs: list = field(default_factory=list)


def timed(job, poll: float = 0.01, timeout: float = 300.0) -> Timing:
    """Follow one submitted job, noting when the server started it (first non-queue status)."""
    submitted = time.monotonic()
    timing = Timing()
    while not job.done():
        status = job.status()
        if timing.wait is None and status.code.name in STARTED:
            timing.wait = time.monotonic() - submitted
        if time.monotonic() - submitted > timeout:
            job.cancel()
            raise TimeoutError(f"request not finished after {timeout:.0f} s")
        time.sleep(poll)
    job.result(timeout=timeout)  # raises the server's error, if any
    timing.total = time.monotonic() - submitted
    if timing.wait is None:  # finished between two polls
        timing.wait = timing.total
    timing.outputs = job.outputs()
    return timing


@dataclass
class ClientResult:
    index: int
    train: Timing | None = None
    compare: Timing | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.train is not None and self.compare is not None


def run_client(url: str, index: int, steps: int, start: threading.Barrier) -> ClientResult:
    from gradio_client import Client

    result = ClientResult(index)
    try:
        client = Client(url, verbose=False)  # one client = one session
        start.wait(60)
        result.train = timed(client.submit(steps=steps, api_name="/train", **SMALL))
        final = result.train.outputs[-1][0]
        if not final.startswith(f"Done: {steps} steps"):
            raise RuntimeError(f"train ended with: {final[:200]}")
        result.compare = timed(client.submit(prompt="What is 2+2?", max_new_tokens=8, api_name="/compare"))
        base, adapted = result.compare.outputs[-1]
        if not (isinstance(base, str) and isinstance(adapted, str)):
            raise RuntimeError(f"compare returned {base!r}, {adapted!r}")
    except Exception as exc:  # report per client, keep the others going
        result.error = f"{type(exc).__name__}: {exc}"[:300]
    return result


def run_load(url: str, clients: int = 6, steps: int = 2) -> tuple[list[ClientResult], float]:
    """Start every client at once; return their results and the wall time for all of them."""
    start = threading.Barrier(clients)
    results: list[ClientResult | None] = [None] * clients

    def work(i):
        results[i] = run_client(url, i, steps, start)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    wall = time.monotonic() - t0
    return [r if r is not None else ClientResult(i, error="client thread did not finish")
            for i, r in enumerate(results)], wall


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def _stats(values: list[float]) -> str:
    if not values:
        return "– / – / –"
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def markdown_table(results: list[ClientResult], wall: float, steps: int) -> str:
    lines = [f"Load test: {len(results)} concurrent clients, Train ({steps} steps) then Compare, tiny-random.",
             "", "| client | train wait (s) | train total (s) | compare wait (s) | compare total (s) | status |",
             "|---|---|---|---|---|---|"]
    for r in results:
        t, c = r.train or Timing(), r.compare or Timing()
        lines.append(f"| {r.index} | {_fmt(t.wait)} | {_fmt(t.total)} | {_fmt(c.wait)} | {_fmt(c.total)} | "
                     f"{'ok' if r.ok else 'FAILED: ' + (r.error or '?').replace('|', '/')} |")
    tw = [r.train.wait for r in results if r.train]
    tt = [r.train.total for r in results if r.train]
    cw = [r.compare.wait for r in results if r.compare]
    ct = [r.compare.total for r in results if r.compare]
    lines.append(f"| min / median / max | {_stats(tw)} | {_stats(tt)} | {_stats(cw)} | {_stats(ct)} | "
                 f"{sum(r.ok for r in results)}/{len(results)} ok |")
    lines += ["", f"Total wall time for all clients: {wall:.2f} s"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--url", help="an already running app (default: start app.py on tiny-random)")
    args = parser.parse_args(argv)
    if args.url:
        results, wall = run_load(args.url, args.clients, args.steps)
    else:
        with serve_app() as url:
            results, wall = run_load(url, args.clients, args.steps)
    print(markdown_table(results, wall, args.steps))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
