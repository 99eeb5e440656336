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

    python benchmarks/profile_decode.py --model tiny-random --rounds 1 --steps 2   # smoke test
    python benchmarks/profile_decode.py --md benchmarks/results/profile_decode.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, markdown_table  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12, help="decode steps per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--top-ops", type=int, default=15)
    parser.add_argument("--md", default=None)
    args = parser.parse_args(argv)

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
    from ppo_demo.tasks import ENGLISH_TASKS

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
    prompts = [chat_prompt_ids(tok, ENGLISH_TASKS[i % len(ENGLISH_TASKS)].prompt) for i in range(args.batch)]
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
    text = "\n".join(lines)
    print(text)
    if args.md:
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.md).write_text(text + "\n")
        print(f"wrote {args.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
