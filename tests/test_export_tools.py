"""Exported bundles against the real tools (requirements-dev.txt): TRL trains 2 steps on CPU,
veRL's own config files compose with our overrides, OpenRLHF's own parser accepts our flags,
and each tool loads reward.py the way it does in training.

Run: .venv/bin/python -m pytest -q tests/test_export_tools.py
"""

from __future__ import annotations

import ast
import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ppo_demo.cli import main as cli_main
from ppo_demo.config import TrainConfig, preset_config
from ppo_demo.export import export_record, make_run_record, read_run_record, write_run_record
from ppo_demo.export.openrlhf_export import openrlhf_args
from ppo_demo.export.verl_export import verl_overrides
from ppo_demo.models import load_model
from ppo_demo.reward import RewardConfig, rule_reward
from ppo_demo.tasks import ENGLISH_TASKS, SEED_ZH_TASKS


def _site_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None:
        pytest.skip(f"{package} is not installed (requirements-dev.txt)")
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)


@pytest.fixture
def record():
    config = preset_config("quick-cpu", steps=3, batch_size=4, num_minibatches=2, max_new_tokens=8,
                           lora_targets=("q_proj", "v_proj"))
    return make_run_record("tiny-random", ENGLISH_TASKS, RewardConfig("contains", 0.002), config,
                           eos_token="<|im_end|>", steps_trained=3)


# --- TRL ---------------------------------------------------------------------------------------

def test_trl_bundle_trains_two_steps_on_cpu(record, tmp_path):
    pytest.importorskip("trl")
    pytest.importorskip("peft")
    loaded = load_model("tiny-random", device="cpu")
    model_dir = tmp_path / "tiny"
    loaded.model.save_pretrained(model_dir)
    loaded.tokenizer.save_pretrained(model_dir)
    bundle = export_record(record, "trl", tmp_path / "bundle")
    out = tmp_path / "grpo-out"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "train_grpo.py", "--model", str(model_dir), "--max-steps", "2",
                           "--output-dir", str(out)], cwd=bundle, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Trained through peft: the saved result is a LoRA adapter on the targets we asked for.
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"], sorted(adapter["target_modules"])) == (8, 16.0, ["q_proj", "v_proj"])
    # logging_steps=1: one dict per optimizer step, the first (a fresh generation) with the reward.
    logs = [ast.literal_eval(line) for line in proc.stdout.splitlines() if line.startswith("{'loss'")]
    assert len(logs) == 2, proc.stdout[-2000:]
    first = {key: float(value) for key, value in logs[0].items()}
    # The lab's rule reward reached TRL: every answer was cut at 8 tokens (clipped_ratio 1), so each
    # pays the miss (-1) and the missing-EOS penalty (0.5) on top of the length penalty.
    assert first["completions/clipped_ratio"] == 1.0 and first["reward"] <= -1.5, first


# --- veRL --------------------------------------------------------------------------------------

def test_verl_overrides_compose_against_its_packaged_config(record, tmp_path):
    hydra = pytest.importorskip("hydra")
    from omegaconf import OmegaConf

    config_dir = _site_file("verl", "trainer", "config")
    bundle = export_record(record, "verl", tmp_path / "bundle")
    overrides = verl_overrides(record, here=str(bundle))
    with hydra.initialize_config_dir(config_dir=str(config_dir), version_base=None):
        cfg = hydra.compose(config_name="ppo_trainer", overrides=overrides)  # a key veRL lacks is an error here
    k = record.knobs
    assert cfg.algorithm.adv_estimator == "gae" and cfg.algorithm.use_kl_in_reward is True
    assert (cfg.algorithm.gamma, cfg.algorithm.lam, cfg.algorithm.kl_ctrl.kl_coef) == (k.gamma, k.gae_lambda, k.kl_coef)
    assert cfg.actor_rollout_ref.actor.clip_ratio == k.clip_eps and cfg.critic.cliprange_value == k.value_clip_eps
    model = cfg.actor_rollout_ref.model
    assert (model.lora_rank, model.lora_alpha, list(model.target_modules)) == (8, 16, ["q_proj", "v_proj"])
    assert cfg.actor_rollout_ref.actor.optim.lr == k.learning_rate
    rollout = OmegaConf.to_container(cfg.actor_rollout_ref.rollout, resolve=True)  # interpolations resolve
    assert (rollout["response_length"], rollout["temperature"], rollout["top_p"]) == (8, k.temperature, k.top_p)
    assert cfg.reward.custom_reward_function.path == f"{bundle}/reward.py"
    # The overrides in the script are the ones composed here.
    script = (bundle / "run_verl.sh").read_text()
    assert all(f'"{o}"' in script for o in verl_overrides(record))
    assert "python3 -m verl.trainer.main_ppo" in script


def test_verl_parquet_rows_have_its_fields(record, tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    bundle = export_record(record, "verl", tmp_path / "bundle")
    train = pd.read_parquet(bundle / "data" / "train.parquet")
    val = pd.read_parquet(bundle / "data" / "val.parquet")
    assert list(train.columns) == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    assert len(val) == len(ENGLISH_TASKS) and len(train) >= record.knobs.batch_size
    row = val.iloc[1]
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert row["prompt"][1]["content"] == ENGLISH_TASKS[1].prompt
    assert row["reward_model"]["ground_truth"] == ENGLISH_TASKS[1].expected


def test_verl_loads_the_reward_as_its_custom_reward_function(record, tmp_path):
    # verl/__init__ imports ray (a GPU-cluster dependency we do not install); its loader module
    # uses only the standard library, so load that file itself and call it as verl does.
    path = _site_file("verl", "utils", "import_utils.py")
    spec = importlib.util.spec_from_file_location("verl_import_utils", path)
    import_utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(import_utils)
    bundle = export_record(record, "verl", tmp_path / "bundle")
    compute_score = import_utils.load_extern_object(module_path=str(bundle / "reward.py"), object_name="compute_score")
    # The keywords NaiveRewardManager.run_single passes.
    score = compute_score(data_source="ppo_lora_lab", solution_str="Paris.", ground_truth="Paris",
                          extra_info={"split": "train", "index": 1, "num_turns": None, "rollout_reward_scores": {}})
    assert score == rule_reward("Paris.", "Paris", record.reward)


# --- OpenRLHF ----------------------------------------------------------------------------------

def _openrlhf_main_block():
    """The statements of train_ppo_ray.py's ``if __name__ == "__main__"`` block, split into the
    parser construction and the validation that follows parse_args (the rest starts ray)."""
    source = _site_file("openrlhf", "cli", "train_ppo_ray.py").read_text()
    main = next(n for n in ast.parse(source).body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test))
    build, validate, seen_parse = [], [], False
    for stmt in main.body:
        text = ast.unparse(stmt)
        if "parse_args" in text:
            seen_parse = True
            continue
        if not seen_parse:
            build.append(stmt)
        elif "hierarchize" in text:
            continue
        elif "train(" in text or "ray" in text or "eval" in text.split("\n")[0]:
            break
        else:
            validate.append(stmt)
    return build, validate


def test_openrlhf_parser_accepts_every_flag(record, tmp_path):
    from datetime import datetime
    from types import SimpleNamespace

    build, validate = _openrlhf_main_block()
    namespace = {"argparse": argparse, "os": os, "datetime": datetime}
    exec(compile(ast.Module(body=build, type_ignores=[]), "train_ppo_ray", "exec"), namespace)
    parser = namespace["parser"]
    parser.error = lambda message: pytest.fail(f"openrlhf rejects the flags: {message}")
    bundle = export_record(record, "openrlhf", tmp_path / "bundle")
    flat = parser.parse_args(openrlhf_args(record, here=str(bundle)))

    def hierarchize(args):  # openrlhf.utils.config.hierarchize (its package __init__ needs deepspeed)
        root = {}
        for key, value in vars(args).items():
            node = root
            *parents, leaf = key.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        build_ns = lambda x: SimpleNamespace(**{k: build_ns(v) for k, v in x.items()}) if isinstance(x, dict) else x
        return build_ns(root)

    args = hierarchize(flat)
    exec(compile(ast.Module(body=validate, type_ignores=[]), "train_ppo_ray", "exec"), {"args": args, "print": print})
    k = record.knobs
    assert (args.actor.eps_clip, args.critic.value_clip, args.algo.advantage.gamma, args.algo.advantage.lambd) == \
        (k.clip_eps, k.value_clip_eps, k.gamma, k.gae_lambda)
    assert (args.algo.kl.init_coef, args.algo.kl.estimator, args.algo.kl.use_loss) == (k.kl_coef, k.kl_estimator, False)
    assert (args.ds.lora.rank, args.ds.lora.alpha, args.ds.lora.target_modules) == (8, 16, ["q_proj", "v_proj"])
    assert (args.rollout.max_new_tokens, args.rollout.temperature, args.rollout.top_p) == (8, k.temperature, k.top_p)
    assert args.critic.model_name_or_path == args.actor.model_name_or_path  # gae => a critic is trained
    assert args.reward.remote_url == [f"{bundle}/reward.py"]


def test_openrlhf_loads_reward_func_as_its_executor_does(record, tmp_path):
    bundle = export_record(record, "openrlhf", tmp_path / "bundle")
    # openrlhf.utils.agent.SingleTurnAgentExecutor: spec_from_file_location("reward_func", path).reward_func
    spec = importlib.util.spec_from_file_location("reward_func", bundle / "reward.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tokenizer = load_model("tiny-random", device="cpu").tokenizer
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Capital of France?"}], tokenize=False,
                                           add_generation_prompt=True)
    ids = tokenizer(prompt + "Paris", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    query = tokenizer.decode(ids, skip_special_tokens=False)  # as the executor decodes observation_tokens
    out = module.reward_func([query], [prompt], ["Paris"])
    assert set(out) == {"rewards", "scores", "extra_logs"}
    assert out["rewards"].tolist() == pytest.approx([rule_reward("Paris", "Paris", record.reward)])
    lines = (bundle / "data" / "prompts.jsonl").read_text().splitlines()
    assert len(lines) == record.knobs.steps * record.knobs.batch_size
    assert json.loads(lines[0]) == {"input": [{"role": "system", "content": record.system_prompt},
                                              {"role": "user", "content": ENGLISH_TASKS[0].prompt}],
                                    "label": ENGLISH_TASKS[0].expected}


# --- the CLI -----------------------------------------------------------------------------------

@pytest.mark.parametrize("target, script", [("trl", "train_grpo.py"), ("verl", "run_verl.sh"),
                                            ("openrlhf", "run_openrlhf.sh")])
def test_cli_exports_a_train_out_folder(tmp_path, target, script):
    run = tmp_path / "run"
    config = TrainConfig(steps=2)
    write_run_record(make_run_record("smollm2-135m-instruct", SEED_ZH_TASKS, RewardConfig("regex", 0.01), config,
                                     eos_token="<|im_end|>"), run)
    assert cli_main(["export", "--run", str(run), "--to", target, "--out", str(tmp_path / "b")]) == 0
    bundle = tmp_path / "b"
    assert {"reward.py", "run.json", "README.md", script} <= {p.name for p in bundle.iterdir()}
    assert read_run_record(bundle).tasks == SEED_ZH_TASKS
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in (bundle / script).read_text(encoding="utf-8")


def test_cli_export_of_a_folder_without_run_json_is_one_line(tmp_path, capsys):
    assert cli_main(["export", "--run", str(tmp_path), "--to", "trl", "--out", str(tmp_path / "b")]) == 2
    assert "run.json" in capsys.readouterr().err


# --- the loss variants (clip-higher, aggregation, Dr. GRPO, KL estimators) ----------------------

@pytest.fixture
def variant_record():
    """GRPO with every loss knob moved off its default."""
    config = preset_config("quick-cpu", steps=3, batch_size=4, num_minibatches=2, max_new_tokens=8,
                           advantage_estimator="grpo", group_size=2, clip_eps_high=0.28,
                           loss_agg_mode="seq-mean-token-sum-norm", grpo_std_norm=False, kl_in="loss",
                           kl_estimator="k2", kl_loss_estimator="k2", lora_targets=("q_proj", "v_proj"))
    return make_run_record("tiny-random", ENGLISH_TASKS, RewardConfig("contains", 0.002), config,
                           eos_token="<|im_end|>", steps_trained=3)


def _openrlhf_namespace(record, tmp_path):
    from datetime import datetime
    from types import SimpleNamespace

    build, validate = _openrlhf_main_block()
    namespace = {"argparse": argparse, "os": os, "datetime": datetime}
    exec(compile(ast.Module(body=build, type_ignores=[]), "train_ppo_ray", "exec"), namespace)
    parser = namespace["parser"]
    parser.error = lambda message: pytest.fail(f"openrlhf rejects the flags: {message}")
    flat = parser.parse_args(openrlhf_args(record, here=str(tmp_path)))
    root = {}
    for key, value in vars(flat).items():
        node = root
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    build_ns = lambda x: SimpleNamespace(**{k: build_ns(v) for k, v in x.items()}) if isinstance(x, dict) else x
    args = build_ns(root)
    exec(compile(ast.Module(body=validate, type_ignores=[]), "train_ppo_ray", "exec"), {"args": args, "print": print})
    return args


def test_verl_maps_the_loss_variants(variant_record, tmp_path):
    hydra = pytest.importorskip("hydra")
    config_dir = _site_file("verl", "trainer", "config")
    overrides = verl_overrides(variant_record, here=str(tmp_path))
    with hydra.initialize_config_dir(config_dir=str(config_dir), version_base=None):
        cfg = hydra.compose(config_name="ppo_trainer", overrides=overrides)
    actor = cfg.actor_rollout_ref.actor
    assert (actor.clip_ratio_low, actor.clip_ratio_high) == (0.2, 0.28)
    assert (actor.loss_agg_mode, actor.loss_scale_factor) == ("seq-mean-token-sum-norm", 8)
    assert (actor.use_kl_loss, actor.kl_loss_type) == (True, "mse")
    assert cfg.algorithm.norm_adv_by_std_in_grpo is False and cfg.algorithm.kl_penalty == "mse"
    # the defaults map to veRL's defaults
    default = make_run_record("tiny-random", ENGLISH_TASKS, RewardConfig("contains", 0.002),
                              preset_config("quick-cpu", max_new_tokens=8))
    with hydra.initialize_config_dir(config_dir=str(config_dir), version_base=None):
        cfg = hydra.compose(config_name="ppo_trainer", overrides=verl_overrides(default, here=str(tmp_path)))
    actor = cfg.actor_rollout_ref.actor
    assert (actor.clip_ratio_low, actor.clip_ratio_high, actor.loss_agg_mode) == (0.2, 0.2, "token-mean")
    assert actor.kl_loss_type == "low_var_kl" and cfg.algorithm.norm_adv_by_std_in_grpo is True


def test_openrlhf_maps_the_loss_variants(variant_record, tmp_path):
    args = _openrlhf_namespace(variant_record, tmp_path)
    assert tuple(args.actor.eps_clip_low_high) == (0.2, 0.28)
    assert args.algo.advantage.estimator == "dr_grpo"
    assert (args.algo.kl.use_loss, args.algo.kl.estimator) == (True, "k2")
    assert args.actor.loss_agg_mode == "token-mean"  # seq-mean-token-sum-norm has no counterpart: noted
    script = (export_record(variant_record, "openrlhf", tmp_path / "b") / "run_openrlhf.sh").read_text()
    assert "loss_agg_mode=seq-mean-token-sum-norm: OpenRLHF aggregates by token-mean or seq-mean-token-mean" in script
    seq = variant_record.knobs.replace(loss_agg_mode="seq-mean-token-mean")
    args = _openrlhf_namespace(make_run_record("tiny-random", ENGLISH_TASKS, RewardConfig("contains", 0.002), seq),
                               tmp_path)
    assert args.actor.loss_agg_mode == "seq-mean-token-mean"


def test_trl_maps_the_loss_variants(variant_record, tmp_path):
    trl = pytest.importorskip("trl")
    from ppo_demo.export.trl_export import grpo_settings

    settings = {name: value for name, value, _ in grpo_settings(variant_record)}
    config = trl.GRPOConfig(output_dir=str(tmp_path), bf16=False, use_cpu=True, **settings)  # unknown field: error
    assert (config.epsilon, config.epsilon_high) == (0.2, 0.28)
    assert (config.loss_type, config.scale_rewards) == ("dr_grpo", "none")
    for mode, loss_type in (("token-mean", "bnpo"), ("seq-mean-token-mean", "grpo")):
        record = make_run_record("tiny-random", ENGLISH_TASKS, RewardConfig("contains", 0.002),
                                 variant_record.knobs.replace(loss_agg_mode=mode, grpo_std_norm=True))
        settings = {name: value for name, value, _ in grpo_settings(record)}
        assert (settings["loss_type"], settings["scale_rewards"]) == (loss_type, "group")
