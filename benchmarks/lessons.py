"""Run every lesson with several seeds on a model and report how often its expected signal
appeared and how long it took.

    python benchmarks/lessons.py --model smollm2-135m-instruct --seeds 1,2,3 \
        --json benchmarks/results/lessons.json --md benchmarks/results/lessons.md

Each seed is a separate lesson run (a lesson that runs two seeds per arm gets s and s + 1000).
Results are appended to the JSON after every lesson run, so a long benchmark can be stopped
and resumed (``--resume`` skips lesson/seed pairs already in the file).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _common import cpu_name, machine_info, write_report

from ppo_demo.cpu_tuning import configure_cpu_runtime
from ppo_demo.lessons import LESSONS, parse_seeds, run_lesson
from ppo_demo.models import load_model


def lesson_seeds(lesson, seed: int) -> tuple[int, ...]:
    return tuple(seed + 1000 * i for i in range(len(lesson.seeds)))


def table(records: list[dict], machine: dict) -> str:
    lines = [f"Machine: {machine['cpu']}, {machine['cpus']} cores, torch threads {machine['torch_threads']}; "
             f"load average at start {machine['loadavg_at_start']}.", "",
             "| lesson | runs × steps | seeds | signal seen | wall s per lesson run (min–max) |",
             "|---|---|---|---|---|"]
    for name in LESSONS:
        rows = [r for r in records if r["lesson"] == name]
        if not rows:
            lines.append(f"| {name} | – | – | not measured | – |")
            continue
        if rows[0].get("skipped"):
            lines.append(f"| {name} | – | – | not run: {rows[0]['skipped']} | – |")
            continue
        seen = sum(r["observed"] for r in rows)
        walls = [r["seconds"] for r in rows]
        lesson = LESSONS[name]
        lines.append(f"| {name} | {len(lesson.arms) * len(lesson.seeds)} × {rows[0]['steps']} | "
                     f"{', '.join(str(r['seed']) for r in rows)} | {seen} of {len(rows)} | "
                     f"{sum(walls) / len(walls):.0f} ({min(walls):.0f}–{max(walls):.0f}) |")
    return "\n".join(lines)


def progress(arm_run, metrics) -> None:
    print(f"  {arm_run.arm.key} seed {arm_run.seed} step {metrics['step']}: {metrics['step_seconds']:.1f} s",
          file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--lessons", help="comma-separated lesson names (default: all)")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "lessons.json"))
    parser.add_argument("--md")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--report", nargs="+", metavar="JSON",
                        help="run nothing: merge these result files into --json and write the table")
    args = parser.parse_args()

    if args.report:
        parts = [json.loads(Path(f).read_text()) for f in args.report]
        data = {"machine": parts[0]["machine"], "records": [r for p in parts for r in p["records"]]}
        Path(args.json).write_text(json.dumps(data, indent=1))
        write_report(table(data["records"], data["machine"]), args.md)
        return
    configure_cpu_runtime()
    machine = {**machine_info(), "cpu": cpu_name()}
    out = Path(args.json)
    data = json.loads(out.read_text()) if args.resume and out.exists() else {"machine": machine, "records": []}
    done = {(r["lesson"], r["seed"]) for r in data["records"]}
    names = args.lessons.split(",") if args.lessons else list(LESSONS)
    loaded = load_model(args.model, device="cpu")
    for name in names:
        lesson = LESSONS[name]
        if lesson.missing_knobs():
            if (name, None) not in done:
                data["records"].append({"lesson": name, "seed": None,
                                        "skipped": f"needs {', '.join(lesson.missing_knobs())}"})
            continue
        for seed in parse_seeds(args.seeds):
            if (name, seed) in done:
                continue
            started = time.perf_counter()
            result = run_lesson(lesson, loaded, seeds=lesson_seeds(lesson, seed), on_step=progress)
            record = {"lesson": name, "seed": seed, "observed": result.outcome.observed,
                      "seconds": time.perf_counter() - started, "steps": lesson.steps,
                      "measured": result.outcome.measured,
                      "loadavg_after": __import__("os").getloadavg()}
            data["records"].append(record)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(data, indent=1))
            print(json.dumps({k: record[k] for k in ("lesson", "seed", "observed", "seconds")}), flush=True)
    write_report(table(data["records"], data["machine"]), args.md)


if __name__ == "__main__":
    main()
