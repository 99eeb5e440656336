"""Where a decode step's time goes, and what each sampling saving is worth.

Loads the model, injects the default LoRA (B randomised so it is not a no-op), and measures,
interleaved over ``--rounds`` rounds (the median is reported, so a burst of load on a shared
machine hits every variant alike), wall and CPU milliseconds of:

* one decode step at ``--batch`` rows with the adapters as shipped (fused addmm), with the
  textbook LoRA forward (matmul, scale, matmul, add), and with the adapters off (the floor);
* the sampler per decode step: the nucleus drawn from the top-k candidates (as shipped)
  against the vocabulary-wide mask + softmax + float64 CDF, and at top-p 1;
* a whole batch of sampling (seed knobs, EOS on) with prompt sharing and finished-row dropping
  on and off, with how many row-steps each computed.

Then torch.profiler over a few decode steps: operations per step and the top ops.

With ``--packing``, instead: every Linear through oneDNN with weights packed once per sampling
call (ppo_demo.packed_linears) against the plain path, interleaved in one process: a decode
step at several batch sizes, the LM head left unpacked, the prefill, the packing itself, and
whole sampling calls (PolicyRuntime.sample_and_score) at the seed's knobs (batch 8, 48 new
tokens, top-p 0.9) and quick-cpu's (batch 12 = 4 tasks x 3, 16 new tokens, top-p 1). With
``--rss``, also the peak RSS of training steps with and without packing, each in its own process.

    python benchmarks/profile_decode.py --model tiny-random --rounds 1 --steps 2   # smoke test
    python benchmarks/profile_decode.py --md benchmarks/results/profile_decode.md
    python benchmarks/profile_decode.py --packing --rss --threads 2 --md benchmarks/results/decode_packed_epyc.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cpu_name, machine_info, markdown_table, write_report  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12, help="decode steps per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--top-ops", type=int, default=15)
    parser.add_argument("--md", default=None)
    parser.add_argument("--packing", action="store_true", help="measure oneDNN weight packing instead (see above)")
    parser.add_argument("--batches", default="1,4,8,12", help="--packing: decode step batch sizes")
    parser.add_argument("--rss", action="store_true", help="--packing: also peak RSS of training steps, packed or not")
    parser.add_argument("--rss-child", choices=("packed", "plain"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        return rss_child(args)
    if args.packing:
        return packing_main(args)

    import torch
    import torch.nn.functional as F

    from ppo_demo import lora as lora_module
    from ppo_demo.config import TrainConfig
    from ppo_demo.cpu_tuning import configure_cpu_runtime, usable_cpus
    from ppo_demo.models import load_model
    from ppo_demo.policy import PolicyRuntime, lora_settings
    from ppo_demo.rollout import (chat_prompt_ids, draw_with_uniforms, eos_token_ids, left_pad,
                                  position_ids_from_mask, sample_next_tokens, sample_responses, top_p_filter,
                                  uniforms)
    from ppo_demo.tasks import ENGLISH_TASKS, training_tasks

    configure_cpu_runtime()
    torch.set_num_threads(args.threads or usable_cpus())
    loaded = load_model(args.model, device="cpu")
    runtime = PolicyRuntime(loaded.model, "lora", lora_settings(TrainConfig()))
    model = runtime.policy_model.eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for _, layer in lora_module.lora_layers(model):
            torch.nn.init.normal_(layer.lora_B, std=0.01)
    tok = loaded.tokenizer
    train = training_tasks(ENGLISH_TASKS)  # the prompts a run samples
    prompts = [chat_prompt_ids(tok, train[i % len(train)].prompt) for i in range(args.batch)]
    ids, mask = left_pad(prompts, tok.pad_token_id, "cpu")
    P = ids.shape[1]

    shipped_forward = lora_module.LoRALinear.forward

    def textbook_forward(self, x):
        out = self.base(x)
        if not self.enabled or self.merged:
            return out
        h = (self.dropout(x) @ self.lora_A.t()) * self.scaling
        return out + h @ self.lora_B.t()

    def use(forward, enabled):
        lora_module.LoRALinear.forward = forward
        for _, layer in lora_module.lora_layers(model):
            layer.enabled = enabled

    @torch.no_grad()
    def decode_ms(steps=args.steps):
        out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask), use_cache=True,
                    logits_to_keep=1)
        past, token = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
        full_mask = torch.cat([mask, mask.new_ones(args.batch, steps + 1)], dim=-1)
        positions = position_ids_from_mask(mask)[:, -1:]
        wall, cpu = time.perf_counter(), time.process_time()
        for t in range(steps):
            positions = positions + 1
            out = model(input_ids=token, attention_mask=full_mask[:, :P + t + 1], position_ids=positions,
                        past_key_values=past, use_cache=True, logits_to_keep=1)
            past, token = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
        return 1000 * (time.perf_counter() - wall) / steps, 1000 * (time.process_time() - cpu) / steps

    with torch.no_grad():
        real_logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask),
                            logits_to_keep=1).logits[:, -1].float()

    def sampler_ms(kind, calls=20):
        generator = torch.Generator().manual_seed(0)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            u = uniforms(args.batch, generator, "cpu")
            if kind == "candidates":
                sample_next_tokens(real_logits, 1.0, 0.9, u)
            elif kind == "vocabulary":
                draw_with_uniforms(torch.softmax(top_p_filter(real_logits / 1.0, 0.9), dim=-1), u)
            else:
                sample_next_tokens(real_logits, 1.0, 1.0, u)
        return 1000 * (time.perf_counter() - wall) / calls, 1000 * (time.process_time() - cpu) / calls

    row_steps = {}

    def sampling_s(share, drop):
        calls = []
        handle = model.register_forward_pre_hook(lambda m, a, kw: calls.append(kw["input_ids"].shape[0]),
                                                 with_kwargs=True)
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            batch = sample_responses(model, prompts, pad_id=tok.pad_token_id, eos_ids=eos_token_ids(tok, model),
                                     max_new_tokens=48, temperature=1.0, top_p=0.9, share_prompts=share,
                                     drop_finished=drop, generator=torch.Generator().manual_seed(1))
        finally:
            handle.remove()
        result = time.perf_counter() - wall, time.process_time() - cpu
        lengths = batch.response_lengths.tolist()
        row_steps[(share, drop)] = (calls[0], sum(calls[1:]), len(calls) - 1, sum(lengths) / len(lengths), max(lengths))
        return result

    variants = {
        "decode step, fused LoRA (shipped)": lambda: (use(shipped_forward, True), decode_ms())[1],
        "decode step, textbook LoRA": lambda: (use(textbook_forward, True), decode_ms())[1],
        "decode step, adapters off (floor)": lambda: (use(shipped_forward, False), decode_ms())[1],
        "sampler top-p 0.9, from candidates (shipped)": lambda: sampler_ms("candidates"),
        "sampler top-p 0.9, vocabulary-wide": lambda: sampler_ms("vocabulary"),
        "sampler top-p 1.0": lambda: sampler_ms("full"),
        "sampling a batch, sharing + dropping (shipped) [s]": lambda: (use(shipped_forward, True), sampling_s(True, True))[1],
        "sampling a batch, neither [s]": lambda: (use(shipped_forward, True), sampling_s(False, False))[1],
    }
    load_before = os.getloadavg()
    for fn in variants.values():  # warm-up
        fn()
    measured = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            measured[name].append(fn())
    use(shipped_forward, True)

    rows = [[name, statistics.median(w for w, _ in v), statistics.median(c for _, c in v),
             " ".join(f"{w:.0f}" if w >= 10 else f"{w:.2f}" for w, _ in v)] for name, v in measured.items()]
    lines = [f"model={args.model} batch={args.batch} threads={torch.get_num_threads()} "
             f"load average before {load_before}, after {os.getloadavg()}; machine {machine_info()['platform']}",
             "", markdown_table(["variant", "wall ms (median)", "CPU ms (median)", "wall per round"], rows), ""]
    for (share, drop), (prefill_rows, rows_computed, decode_calls, mean_len, longest) in row_steps.items():
        lines.append(f"sampling share_prompts={share} drop_finished={drop}: prefill rows {prefill_rows}, "
                     f"{decode_calls} decode steps computing {rows_computed} row-steps "
                     f"(responses: mean {mean_len:.1f}, longest {longest} tokens)")

    from torch.profiler import ProfilerActivity, profile

    steps = 4
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        decode_ms(steps)
    events = prof.key_averages()
    top_level = sum(e.count for e in events if e.key.startswith("aten::")) / (steps + 1)
    lines += ["", f"aten operator calls per decode step (nested calls included, prefill averaged in): {top_level:.0f}",
              "", events.table(sort_by="self_cpu_time_total", row_limit=args.top_ops)]
    write_report("\n".join(lines), args.md)
    return 0



def packing_main(args) -> int:
    import torch

    from ppo_demo import lora as lora_module
    from ppo_demo.config import TrainConfig
    from ppo_demo.cpu_tuning import configure_cpu_runtime, usable_cpus
    from ppo_demo.models import load_model
    from ppo_demo.packed_linears import packed_linears
    from ppo_demo.policy import PolicyRuntime, lora_settings
    from ppo_demo.rollout import chat_prompt_ids, left_pad, position_ids_from_mask
    from ppo_demo.tasks import ENGLISH_TASKS, training_tasks

    configure_cpu_runtime()  # as the app does: freed packed copies stay in the heap for reuse
    torch.set_num_threads(args.threads or usable_cpus())
    load_before = os.getloadavg()
    loaded = load_model(args.model, device="cpu")
    tok = loaded.tokenizer
    runtime = PolicyRuntime(loaded.model, "lora", lora_settings(TrainConfig()), tokenizer=tok)
    model = runtime.policy_model.eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for _, layer in lora_module.lora_layers(model):
            torch.nn.init.normal_(layer.lora_B, std=0.01)
    task_prompts = [chat_prompt_ids(tok, t.prompt) for t in training_tasks(ENGLISH_TASKS)]

    def packing(kind):
        """The context a variant runs under: everything packed, the trunk only, or nothing."""
        target = model.get_decoder() if kind == "trunk only" else model
        return packed_linears(target, enabled=kind != "plain")

    @torch.no_grad()
    def decode_ms(batch, kind, steps=args.steps):
        prompts = [task_prompts[i % len(task_prompts)] for i in range(batch)]
        ids, mask = left_pad(prompts, tok.pad_token_id, "cpu")
        P = ids.shape[1]
        with packing(kind):  # packing cost not counted here (see "pack" below)
            out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask),
                        use_cache=True, logits_to_keep=1)
            past, token = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            full_mask = torch.cat([mask, mask.new_ones(batch, steps + 1)], dim=-1)
            positions = position_ids_from_mask(mask)[:, -1:]
            wall = time.perf_counter()
            for t in range(steps):
                positions = positions + 1
                out = model(input_ids=token, attention_mask=full_mask[:, :P + t + 1], position_ids=positions,
                            past_key_values=past, use_cache=True, logits_to_keep=1)
                past, token = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            return 1000 * (time.perf_counter() - wall) / steps

    @torch.no_grad()
    def prefill_ms(distinct, kind):
        """The prompt pass of a sampling call: ``distinct`` prompts (sharing runs each once)."""
        ids, mask = left_pad([task_prompts[i % len(task_prompts)] for i in range(distinct)], tok.pad_token_id, "cpu")
        with packing(kind):
            wall = time.perf_counter()
            model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask), use_cache=True,
                  logits_to_keep=1)
            return 1000 * (time.perf_counter() - wall)

    @torch.no_grad()
    def pack_ms(adapters):
        wall = time.perf_counter()
        with (nullcontext() if adapters else lora_module.adapters_disabled(model)), packed_linears(model):
            entered = time.perf_counter()
        return 1000 * (entered - wall), 1000 * (time.perf_counter() - entered)

    knobs = {"seed knobs (8 rows, 48 tokens, top-p 0.9)": (8, 48, 0.9),
             "quick-cpu knobs (12 rows, 16 tokens, top-p 1)": (12, 16, 1.0)}
    lengths = {}

    def sampling_s(name, pack):
        rows, max_new, top_p = knobs[name]
        prompts = [task_prompts[i % len(task_prompts)] for i in range(rows)]  # 4 distinct prompts
        runtime.pack_for_sampling = pack
        wall = time.perf_counter()
        batch, _, _ = runtime.sample_and_score(prompts, max_new_tokens=max_new, temperature=1.0, top_p=top_p, seed=1)
        lengths[name] = batch.response_lengths.tolist()
        return time.perf_counter() - wall

    batches = [int(b) for b in args.batches.split(",")]
    variants = {}
    for b in batches:
        kinds = ("plain", "packed", "trunk only") if b in (1, 8) else ("plain", "packed")
        for kind in kinds:
            variants[("decode step [ms]", f"batch {b}", kind)] = lambda b=b, kind=kind: decode_ms(b, kind)
    for distinct in (1, 4):
        for kind in ("plain", "packed"):
            variants[("prefill [ms]", f"{distinct} prompt(s)", kind)] = lambda d=distinct, kind=kind: prefill_ms(d, kind)
    variants[("pack + unpack [ms]", "adapters on (W + ΔW)", "packed")] = lambda: sum(pack_ms(True))
    variants[("pack + unpack [ms]", "adapters off (W)", "packed")] = lambda: sum(pack_ms(False))
    for name in knobs:
        for kind, pack in (("plain", False), ("packed", True)):
            variants[("sampling call [s]", name, kind)] = lambda name=name, pack=pack: sampling_s(name, pack)

    for fn in variants.values():  # warm-up: first-touch page faults, oneDNN kernel creation
        fn()
    measured = {key: [] for key in variants}
    for round_index in range(args.rounds):
        for key, fn in variants.items():
            measured[key].append(fn())
        print(f"round {round_index + 1}/{args.rounds} done, load {os.getloadavg()}", flush=True)
    runtime.pack_for_sampling = True
    load_after = os.getloadavg()

    median = {key: statistics.median(v) for key, v in measured.items()}
    rows = []
    for (what, where, kind), value in median.items():
        plain = median.get((what, where, "plain"))
        ratio = plain / value if plain and kind != "plain" else float("nan")
        fmt = (lambda v: f"{v:.2f}") if what.endswith("[s]") else (lambda v: f"{v:.1f}")
        rows.append([what, where, kind, fmt(value), "" if ratio != ratio else f"{ratio:.2f}x",
                     " ".join(fmt(v) for v in measured[(what, where, kind)])])
    lines = [f"model={args.model} threads={torch.get_num_threads()} rounds={args.rounds} (medians; variants "
             f"interleaved in each round) decode steps per measurement={args.steps}",
             f"machine: {cpu_name()}, {machine_info()['platform']}; torch {torch.__version__}",
             f"load average before {tuple(round(x, 2) for x in load_before)}, after "
             f"{tuple(round(x, 2) for x in load_after)}", "",
             markdown_table(["measure", "case", "variant", "median", "speed-up vs plain", "per round"], rows), ""]
    for name, lens in lengths.items():
        lines.append(f"{name}: response lengths (last round) {lens}")
    if args.rss:
        lines += ["", rss_report(args)]
    write_report("\n".join(lines), args.md)
    return 0


def rss_report(args) -> str:
    """Each side in a fresh process: peak RSS after loading, after the first sampling call, and
    after whole training steps (the update is where a step's peak is)."""
    import json
    import subprocess
    import tempfile

    rows = []
    for side in ("plain", "packed"):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            cmd = [sys.executable, __file__, "--model", args.model, "--rss-child", side, "--md", out.name]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            subprocess.run(cmd, check=True)
            result = json.loads(Path(out.name).read_text())
        rows.append([side, *(f"{result[k]:.0f}" for k in ("loaded", "sampled", "steps")), f"{result['step_s']:.1f}"])
    return ("Peak RSS (MB, ru_maxrss) of 2 quick-cpu training steps (batch 12), each side in its own process:\n\n"
            + markdown_table(["sampling", "after load", "after one sampling call", "after 2 steps", "s/step"], rows))


def rss_child(args) -> int:
    import json

    import torch

    from _common import peak_rss_mb
    from ppo_demo.config import preset_config
    from ppo_demo.cpu_tuning import configure_cpu_runtime, usable_cpus
    from ppo_demo.models import load_model
    from ppo_demo.policy import PolicyRuntime
    from ppo_demo.reward import RewardConfig
    from ppo_demo.tasks import ENGLISH_TASKS, training_tasks
    from ppo_demo.trainer import PPOTrainer

    configure_cpu_runtime()
    torch.set_num_threads(args.threads or usable_cpus())
    PolicyRuntime.pack_for_sampling = args.rss_child == "packed"
    loaded = load_model(args.model, device="cpu")
    result = {"loaded": peak_rss_mb()}
    trainer = PPOTrainer(loaded, preset_config("quick-cpu").validate(), ENGLISH_TASKS, RewardConfig())
    trainer.runtime.sample_and_score([[1, 2, 3]] * 12, max_new_tokens=16, temperature=1.0, top_p=1.0, seed=0)
    result["sampled"] = peak_rss_mb()
    wall = time.perf_counter()
    for _ in range(2):
        trainer.step()
    result["step_s"] = (time.perf_counter() - wall) / 2
    result["steps"] = peak_rss_mb()
    Path(args.md).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
