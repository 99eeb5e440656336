"""Load test: concurrent API visitors against the app on tiny-random, loopback only.

Starts ``app.py`` with PPO_DEMO_MODEL=tiny-random on a free port of 127.0.0.1 (or uses a --url
on this machine). Two scenarios:

* ``--scenario mixed`` (the default): N visitors (gradio_client, one session each) at once, in
  roles cycling train, compare, evaluate, bad input. Trainers press Train once (``--train-steps``
  steps); comparers press Compare again and again, evaluators Evaluate, and the bad-input visitor
  sends invalid requests (bad regex, over-limit steps, empty prompt, ...), all until the last
  trainer is done or ``--duration`` runs out. Reported: Compare latency (p50 / p95) while others
  train against a Compare alone, Evaluate latency, refused bad inputs, unexpected errors, the
  server's RSS before / after (and peak), and the load average of the (shared) machine.
* ``--scenario train-then-compare``: each client presses Train (2 steps) and then Compare, all
  at once; the table shows each request's queue wait and total time (tests/test_load.py).

Run: .venv/bin/python benchmarks/load_test.py [--visitors 6] [--train-steps 30] [--duration 300]
     [--out benchmarks/results/load_test]   (writes .md and .json)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import serve_app  # noqa: E402  (also used by tests/test_load.py as load_test.serve_app)

SMALL = dict(batch_size=4, num_minibatches=2, max_new_tokens=6)
# httpx's default 5 s per HTTP call is shorter than a loaded shared 2-core machine may take to
# accept a request; the benchmark measures latency, so a slow answer is a number, not a failure.
HTTP = dict(httpx_kwargs={"timeout": 60})
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
        client = Client(url, verbose=False, **HTTP)  # one client = one session
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


# --- mixed visitors ------------------------------------------------------------------------

ROLES = ("train", "compare", "evaluate", "bad")
MAX_VISITORS, MAX_DURATION = 32, 1800.0  # bounds: this is a benchmark, not a flood
TRAIN_KNOBS = dict(batch_size=8, num_minibatches=2, max_new_tokens=16)
COMPARE_PROMPTS = ["What is 2+2?", "Name a colour.", "Say yes.", "What is the capital of France?"]
ONE_TASK = {"headers": ["prompt", "expected"], "data": [["Say yes.", "yes"]]}
# Requests a stranger might send; each must be refused with a message, quickly.
BAD_INPUTS = [
    ("/train", dict(steps=10 ** 6)),  # over the server's step limit
    ("/train", dict(steps=1, match_mode="regex", tasks={"headers": ["prompt", "expected"],
                                                         "data": [["Say yes.", "ye(s"]]})),  # a broken regex
    ("/compare", dict(prompt="")),  # nothing to compare
    ("/compare", dict(prompt="x" * 100_000)),  # a prompt over the length limit
    ("/evaluate", dict(samples_per_task=10 ** 4)),  # K over the limit
    ("/train", dict(steps=1, learning_rate=-1.0)),  # a knob out of its range
]


@dataclass
class Request:
    visitor: int
    role: str
    kind: str  # "train" | "compare" | "evaluate" | "bad"
    start: float  # seconds since the load began
    seconds: float
    ok: bool
    during_training: bool = False  # started while some trainer's run was going
    detail: str = ""


class TrainingWindow:
    """Counts the trainers still running, so a request knows whether others were training."""

    def __init__(self, trainers: int):
        self.running = trainers
        self.lock = threading.Lock()
        self.done = threading.Event()
        if trainers == 0:
            self.done.set()

    def finish(self) -> None:
        with self.lock:
            self.running -= 1
            if self.running <= 0:
                self.done.set()


def server_process(url: str):
    """The psutil.Process serving ``url`` on this machine (its RSS is what we report), or None."""
    import psutil

    port = urlparse(url).port
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(part.endswith("app.py") for part in proc.info["cmdline"] or []) and \
                    proc.environ().get("GRADIO_SERVER_PORT") == str(port):
                return proc
        except (psutil.Error, OSError):
            continue
    return None


def _rss_mb(proc) -> float | None:
    try:
        return proc.memory_info().rss / 1024 ** 2 if proc is not None else None
    except Exception:
        return None


def _visit(url: str, index: int, role: str, t0: float, window: TrainingWindow, deadline: float,
           train_steps: int, start: threading.Barrier, log: list[Request], lock: threading.Lock) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    def record(kind, began, ok, detail="", during=None):
        with lock:
            log.append(Request(index, role, kind, round(began - t0, 3), round(time.monotonic() - began, 3), ok,
                               (window.running > 0) if during is None else during, detail[:200]))

    client = Client(url, verbose=False, **HTTP)
    try:
        start.wait(120)
    except threading.BrokenBarrierError:
        pass
    if role == "train":
        began = time.monotonic()
        try:
            outputs = list(client.submit(steps=train_steps, api_name="/train", **TRAIN_KNOBS))
            final = outputs[-1][0] if outputs else ""
            record("train", began, final.startswith(f"Done: {train_steps} steps"), final, during=True)
        except Exception as exc:
            record("train", began, False, f"{type(exc).__name__}: {exc}", during=True)
        finally:
            window.finish()
        return
    n = 0
    while not window.done.is_set() and time.monotonic() < deadline:
        began = time.monotonic()
        during = window.running > 0
        try:
            if role == "compare":
                base, adapted = client.predict(prompt=COMPARE_PROMPTS[n % len(COMPARE_PROMPTS)], max_new_tokens=8,
                                               api_name="/compare")
                record("compare", began, isinstance(base, str) and isinstance(adapted, str), during=during)
            elif role == "evaluate":
                client.predict(samples_per_task=2, tasks=ONE_TASK, max_new_tokens=8, api_name="/evaluate")
                record("evaluate", began, True, during=during)
            else:
                api, kwargs = BAD_INPUTS[n % len(BAD_INPUTS)]
                try:
                    client.predict(api_name=api, **kwargs)
                    record("bad", began, False, f"{api} accepted {sorted(kwargs)}", during=during)
                except AppError as exc:  # the expected answer: a message, not a crash
                    record("bad", began, True, str(exc), during=during)
                time.sleep(0.2)  # a stranger retyping, not a flood
        except Exception as exc:
            record(role, began, False, f"{type(exc).__name__}: {exc}", during=during)
        n += 1


def _percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def run_mixed(url: str, visitors: int = 6, train_steps: int = 30, duration: float = 300.0) -> dict:
    """Run the mixed scenario; return a JSON-able summary with every request's timing."""
    if not 1 <= visitors <= MAX_VISITORS:
        raise ValueError(f"--visitors must be between 1 and {MAX_VISITORS}")
    if not 1 <= duration <= MAX_DURATION:
        raise ValueError(f"--duration must be between 1 and {MAX_DURATION:.0f} s")
    from gradio_client import Client

    roles = [ROLES[i % len(ROLES)] for i in range(visitors)]
    loadavg_start = os.getloadavg()
    proc = server_process(url)
    probe = Client(url, verbose=False, **HTTP)
    alone = []
    for i in range(4):  # the first Compare also warms the model up; the rest are "alone" latencies
        began = time.monotonic()
        probe.predict(prompt=COMPARE_PROMPTS[i % len(COMPARE_PROMPTS)], max_new_tokens=8, api_name="/compare")
        if i:
            alone.append(time.monotonic() - began)
    rss_before = _rss_mb(proc)
    peak = [rss_before or 0.0]
    window = TrainingWindow(roles.count("train"))
    log: list[Request] = []
    lock = threading.Lock()
    start = threading.Barrier(visitors)
    stop_sampling = threading.Event()

    def sample_rss():
        while not stop_sampling.wait(0.5):
            peak[0] = max(peak[0], _rss_mb(proc) or 0.0)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    deadline = t0 + duration
    threads = [threading.Thread(target=_visit, args=(url, i, role, t0, window, deadline, train_steps, start, log, lock),
                                daemon=True) for i, role in enumerate(roles)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, deadline - time.monotonic()) + 120)
    wall = time.monotonic() - t0
    stop_sampling.set()
    rss_after = _rss_mb(proc)
    if rss_after:
        peak[0] = max(peak[0], rss_after)
    unfinished = [i for i, t in enumerate(threads) if t.is_alive()]
    return dict(visitors=visitors, roles=roles, train_steps=train_steps, train_knobs=TRAIN_KNOBS,
                duration_limit=duration, wall_seconds=round(wall, 2), compare_alone=[round(x, 3) for x in alone],
                rss_before_mb=rss_before, rss_after_mb=rss_after, rss_peak_mb=peak[0] or None,
                unfinished_visitors=unfinished, loadavg_start=loadavg_start, loadavg=os.getloadavg(),
                requests=[asdict(r) for r in sorted(log, key=lambda r: r.start)])


def _f(x, digits=2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def mixed_summary(result: dict) -> dict:
    """The headline numbers of one mixed run."""
    reqs = result["requests"]
    def times(kind, during=None):
        return [r["seconds"] for r in reqs if r["kind"] == kind and r["ok"]
                and (during is None or r["during_training"] == during)]
    compare_busy = times("compare", True)
    trains = [r for r in reqs if r["kind"] == "train"]
    bad = [r for r in reqs if r["kind"] == "bad"]
    errors = [r for r in reqs if not r["ok"] and r["kind"] != "bad"] + [r for r in bad if not r["ok"]]
    return {
        "compare_while_training_n": len(compare_busy),
        "compare_while_training_p50": _percentile(compare_busy, 50),
        "compare_while_training_p95": _percentile(compare_busy, 95),
        "compare_while_training_max": max(compare_busy) if compare_busy else None,
        "compare_alone_p50": _percentile(result["compare_alone"], 50),
        "evaluate_n": len(times("evaluate")), "evaluate_p50": _percentile(times("evaluate"), 50),
        "train_ok": sum(r["ok"] for r in trains), "train_n": len(trains),
        "train_seconds_max": max((r["seconds"] for r in trains), default=None),
        "bad_refused": sum(r["ok"] for r in bad), "bad_n": len(bad),
        "bad_p95": _percentile([r["seconds"] for r in bad if r["ok"]], 95),
        "unexpected_errors": len(errors), "error_examples": sorted({r["detail"][:120] for r in errors})[:5],
        "rss_before_mb": result["rss_before_mb"], "rss_after_mb": result["rss_after_mb"],
        "rss_peak_mb": result["rss_peak_mb"],
    }


def mixed_markdown(result: dict, label: str = "") -> str:
    s = mixed_summary(result)
    load = " -> ".join(", ".join(f"{x:.2f}" for x in result[key])
                       for key in ("loadavg_start", "loadavg") if result.get(key))
    roles = ", ".join(f"{result['roles'].count(r)} {r}" for r in ROLES if r in result["roles"])
    rows = [
        ("Compare while others train, p50 / p95 / max (s)",
         f"{_f(s['compare_while_training_p50'])} / {_f(s['compare_while_training_p95'])} / "
         f"{_f(s['compare_while_training_max'])} (n={s['compare_while_training_n']})"),
        ("Compare alone, p50 (s)", _f(s["compare_alone_p50"])),
        ("Evaluate (K=2, 1 task), p50 (s)", f"{_f(s['evaluate_p50'])} (n={s['evaluate_n']})"),
        ("Trains finished / longest (s)", f"{s['train_ok']}/{s['train_n']} / {_f(s['train_seconds_max'])}"),
        ("Bad inputs refused with a message / p95 (s)", f"{s['bad_refused']}/{s['bad_n']} / {_f(s['bad_p95'])}"),
        ("Unexpected errors", str(s["unexpected_errors"])),
        ("Server RSS before / after / peak (MB)",
         f"{_f(s['rss_before_mb'], 0)} / {_f(s['rss_after_mb'], 0)} / {_f(s['rss_peak_mb'], 0)}"),
        ("Wall time (s)", _f(result["wall_seconds"], 1)),
    ]
    lines = [f"Load test{' (' + label + ')' if label else ''}: {result['visitors']} visitors ({roles}), tiny-random, "
             f"Train = {result['train_steps']} steps of batch {result['train_knobs']['batch_size']} x "
             f"{result['train_knobs']['max_new_tokens']} tokens; load average (1/5/15 min) start -> end: {load} "
             "(a shared 2-core machine).",
             "", "| measure | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows]]
    if s["error_examples"]:
        lines += ["", "Errors seen: " + "; ".join(e.replace("|", "/") for e in s["error_examples"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=("mixed", "train-then-compare"), default="mixed")
    parser.add_argument("--visitors", type=int, default=6, help=f"mixed: visitors at once (1-{MAX_VISITORS})")
    parser.add_argument("--train-steps", type=int, default=30, help="mixed: steps per trainer's Train press")
    parser.add_argument("--duration", type=float, default=300.0, help="mixed: stop sending after this many seconds")
    parser.add_argument("--clients", type=int, default=6, help="train-then-compare: clients")
    parser.add_argument("--steps", type=int, default=2, help="train-then-compare: steps per Train")
    parser.add_argument("--url", help="an app already running on this machine (default: start app.py on tiny-random)")
    parser.add_argument("--label", default="", help="mixed: a name for the table (e.g. before / after)")
    parser.add_argument("--out", help="mixed: write OUT.md and OUT.json")
    args = parser.parse_args(argv)
    if args.url and urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--url must be on this machine (127.0.0.1 / localhost): a load test hits only loopback")
    if args.scenario == "train-then-compare":
        if args.url:
            results, wall = run_load(args.url, args.clients, args.steps)
        else:
            with serve_app() as url:
                results, wall = run_load(url, args.clients, args.steps)
        print(markdown_table(results, wall, args.steps))
        return 0 if all(r.ok for r in results) else 1
    if args.url:
        result = run_mixed(args.url, args.visitors, args.train_steps, args.duration)
    else:
        with serve_app() as url:
            result = run_mixed(url, args.visitors, args.train_steps, args.duration)
    table = mixed_markdown(result, args.label)
    print(table)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
        out.with_suffix(".json").write_text(json.dumps(dict(result, summary=mixed_summary(result)), indent=1),
                                            encoding="utf-8")
    return 0 if mixed_summary(result)["unexpected_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
