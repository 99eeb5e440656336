"""The app's event handlers called directly on ``tiny-random`` (no server, no browser).

Run: .venv/bin/python -m pytest tests/test_ui_handlers.py -q
"""

from __future__ import annotations

import copy
import json
import threading
import zipfile
from pathlib import Path

import gradio as gr
import pytest
import torch

from ppo_demo.peft_format import save_peft_adapter
from ppo_demo.policy import save_policy_state
from ppo_demo.ui import handlers as h
from ppo_demo.ui.heatmap import QUANTITIES, heatmap_html
from ppo_demo.ui.limits import Limits, LimitsError, limits_from_env
from ppo_demo.ui.plots import CHARTS, chart_frame, rollouts_frame
from ppo_demo.ui.model_gate import MODEL_GATE
from ppo_demo.ui.session import ModelRegistry, Session, SessionStore
from gate_probe import gate_is_free

TINY = "tiny-random"
LIMITS = limits_from_env({"PPO_DEMO_MODEL": TINY})


@pytest.fixture(scope="module")
def registry():
    """One tiny model shared by the module's tests, as the app shares one base model."""
    return ModelRegistry()


@pytest.fixture
def session():
    s = Session("test-session")
    yield s
    s.close()
    if s.job is not None:
        s.job.join(30)


def knobs(**changes):
    values = h.default_knobs(LIMITS)
    values.update({"steps": 3, "batch_size": 4, "num_minibatches": 2, "max_new_tokens": 6, **changes})
    return values


TASKS = [["Say yes.", "yes"], ["Say no.", "no"]]


def run(session, registry, table=TASKS, match="contains", **changes):
    return list(h.train(session, TINY, knobs(**changes), table, match, 0.002, registry=registry, limits=LIMITS))


def snapshot(session):
    state = session.policy_state
    return (None if state is None else {k: v.clone() for k, v in state.tensors.items()},
            copy.deepcopy(session.history), session.model_name)


def same(a, b) -> bool:
    tensors_a, hist_a, model_a = a
    tensors_b, hist_b, model_b = b
    if (tensors_a is None) != (tensors_b is None) or hist_a != hist_b or model_a != model_b:
        return False
    return tensors_a is None or (tensors_a.keys() == tensors_b.keys()
                                 and all(torch.equal(tensors_a[k], tensors_b[k]) for k in tensors_a))


# --- training ---------------------------------------------------------------------------

def test_train_streams_one_update_per_step_and_history_grows(session, registry):
    views = run(session, registry)
    step_views = [v for v in views if v.status.startswith("Step ")]
    assert [len(v.history) for v in step_views] == [1, 2, 3]
    assert views[-1].finished and not views[-1].running and views[-1].error is None
    assert "Done: 3 steps" in views[-1].status
    assert session.policy_state is not None and session.policy_state.steps_trained == 3
    assert len(session.last_rollouts) == 4
    frames = {chart: chart_frame(views[-1].history, chart, views[-1].tasks_expected) for chart in CHARTS}
    assert sorted(frames["reward"]["step"].unique()) == [1, 2, 3]
    assert {"mean reward", "task 1 (yes)", "task 2 (no)"} <= set(frames["reward"]["series"])
    assert not frames["kl"].empty and len(rollouts_frame(views[-1].rollouts)) == 4
    # The LoRA B matrices moved away from zero: the adapter really trained.
    assert any(v.abs().sum() > 0 for k, v in session.policy_state.tensors.items() if k.endswith("lora_B"))


def test_train_again_continues_step_count_and_plots(session, registry):
    run(session, registry)
    views = run(session, registry, steps=2)
    assert [m["step"] for m in views[-1].history] == [1, 2, 3, 4, 5]
    assert session.policy_state.steps_trained == 5
    assert "Step 2/2" in [v.status for v in views if v.status.startswith("Step ")][-1]


def test_stop_ends_the_run_and_keeps_the_adapter(session, registry):
    gen = h.train(session, TINY, knobs(steps=50), TASKS, "contains", 0.002, registry=registry, limits=LIMITS)
    seen = []
    for view in gen:
        seen.append(view)
        if view.status.startswith("Step 2/"):
            assert h.stop(session).startswith("Stopping")
    last = seen[-1]
    assert "Stopped after" in last.status and last.finished
    done = len(session.history)
    assert 2 <= done < 50
    assert session.policy_state.steps_trained == done
    assert not session.running and gate_is_free(MODEL_GATE)
    assert h.stop(session).startswith("Nothing is running")


def test_closing_the_generator_stops_the_run(session, registry):
    """What Gradio does when a client disconnects: the generator is closed mid-run."""
    gen = h.train(session, TINY, knobs(steps=50), TASKS, "contains", 0.002, registry=registry, limits=LIMITS)
    for view in gen:
        if view.status.startswith("Step 1/"):
            break
    gen.close()
    session.job.join(30)
    assert session.stop_event.is_set() and len(session.history) < 50
    assert gate_is_free(MODEL_GATE)


def test_reset_returns_to_base(session, registry):
    run(session, registry)
    view = h.reset(session)
    assert session.policy_state is None and session.history == [] and view.history == []
    base, adapted = h.compare(session, TINY, knobs(), "Say yes.", registry=registry, limits=LIMITS)
    assert base == adapted  # no adapter: the adapted policy is the base


def test_error_inside_a_step_ends_the_run_keeps_the_adapter(session, registry, monkeypatch):
    run(session, registry, steps=2)
    before = snapshot(session)
    from ppo_demo.trainer import PPOTrainer
    original = PPOTrainer.step
    calls = {"n": 0}

    def failing_step(self, stop_event=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated failure")
        return original(self, stop_event)

    monkeypatch.setattr(PPOTrainer, "step", failing_step)
    views = run(session, registry, steps=4)
    assert views[-1].error and "simulated failure" in views[-1].error
    assert "Run ended with an error after 1 step" in views[-1].status
    assert session.policy_state.steps_trained == 3 and len(session.history) == 3
    assert before[1] == session.history[:2]
    assert gate_is_free(MODEL_GATE)
    monkeypatch.setattr(PPOTrainer, "step", original)
    assert run(session, registry, steps=1)[-1].error is None  # the app stays usable


# --- compare / evaluate ---------------------------------------------------------------------

def test_compare_returns_two_strings_and_they_differ_after_training(session, registry):
    run(session, registry, steps=4, learning_rate=0.05)
    base, adapted = h.compare(session, TINY, knobs(max_new_tokens=12), "Say yes.", registry=registry, limits=LIMITS)
    assert isinstance(base, str) and isinstance(adapted, str) and base and adapted
    again = h.compare(session, TINY, knobs(max_new_tokens=12), "Say yes.", registry=registry, limits=LIMITS)
    assert again == (base, adapted)  # same seed, same settings
    assert base != adapted


def test_evaluate_table(session, registry):
    run(session, registry, steps=1)
    table = h.evaluate(session, TINY, knobs(), TASKS, "contains", 0.002, 2, registry=registry, limits=LIMITS)
    assert list(table.columns) == h.EVAL_HEADERS
    assert list(table["task"]) == ["Say yes.", "Say no.", "all tasks"]
    assert table[["base success", "adapted success"]].apply(lambda c: c.between(0, 1)).all().all()
    # success is a share of K = 2 answers; the last row is the mean over the tasks
    assert set(table["base success"][:2]) <= {0.0, 0.5, 1.0}
    for column in h.EVAL_HEADERS[2:]:
        assert table[column].iloc[2] == pytest.approx(table[column][:2].mean(), abs=1e-3), column


# --- files -----------------------------------------------------------------------------------

PEFT_FILES = ["adapter_config.json", "adapter_model.safetensors", "ppo_lab.json", "value_head.safetensors"]
# The download adds AdamW's state, so that training the uploaded zip continues exactly.
DOWNLOAD_FILES = sorted([*PEFT_FILES, "optimizer.safetensors"])


def test_export_import_adapter_round_trip(session, registry, tmp_path):
    run(session, registry)
    zipped = h.export_adapter(session)
    with zipfile.ZipFile(zipped) as zf:
        assert sorted(zf.namelist()) == DOWNLOAD_FILES
        assert json.loads(zf.read("adapter_config.json"))["peft_type"] == "LORA"
    metrics = Path(h.export_metrics(session)).read_text()
    assert metrics.splitlines()[0].startswith("run,") and len(metrics.splitlines()) == 4
    expected = snapshot(session)[0]

    other = Session("other")
    view, implied = h.import_adapter(other, [zipped], TINY, knobs(lora_r=4), registry=registry, limits=LIMITS)
    assert implied["lora_r"] == 8 and "Loaded adapter" in view.status
    assert other.policy_state.steps_trained == 3
    assert all(torch.equal(other.policy_state.tensors[k], expected[k]) for k in expected)
    # Continuing from the imported adapter counts on from its steps.
    views = list(h.train(other, TINY, knobs(), TASKS, "contains", 0.002, registry=registry, limits=LIMITS))
    assert views[-1].history[-1]["step"] == 6
    # The loose files work as well as the zip.
    with zipfile.ZipFile(zipped) as zf:
        zf.extractall(tmp_path / "peft")
    third = Session("third")
    h.import_adapter(third, [str(tmp_path / "peft" / name) for name in PEFT_FILES], TINY, knobs(), registry=registry,
                     limits=LIMITS)
    assert third.policy_state.steps_trained == 3
    # The older format still loads (its two files).
    save_policy_state(session.policy_state, tmp_path / "old")
    fourth = Session("fourth")
    h.import_adapter(fourth, [str(tmp_path / "old" / "adapter.safetensors"), str(tmp_path / "old" / "adapter_config.json")],
                     TINY, knobs(), registry=registry, limits=LIMITS)
    assert all(torch.equal(fourth.policy_state.tensors[k], expected[k]) for k in expected)
    for s in (other, third, fourth):
        s.close()


def test_an_adapter_made_by_peft_uploads_with_a_fresh_value_head(session, registry, tmp_path):
    peft = pytest.importorskip("peft")
    from ppo_demo.models import load_model

    base = load_model(TINY, device="cpu").model
    model = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                      task_type="CAUSAL_LM"))
    model.save_pretrained(tmp_path / "made-by-peft")
    archive = tmp_path / "made-by-peft.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in (tmp_path / "made-by-peft").iterdir():
            zf.write(path, f"made-by-peft/{path.name}")  # a folder inside the zip, as zips often have
    view, implied = h.import_adapter(session, [str(archive)], TINY, knobs(), registry=registry, limits=LIMITS)
    assert (implied["lora_r"], implied["lora_alpha"], implied["lora_targets"]) == (4, 8.0, "q_proj, v_proj")
    assert torch.count_nonzero(session.policy_state.tensors["value_head.weight"]) == 0
    views = list(h.train(session, TINY, knobs(lora_r=4, lora_alpha=8.0, lora_targets="q_proj, v_proj", steps=1),
                         TASKS, "contains", 0.002, registry=registry, limits=LIMITS))
    assert views[-1].history[-1]["step"] == 1


def test_export_run_zips_a_bundle_per_tool_with_the_adapter(session, registry):
    run(session, registry, steps=2)
    zipped = h.export_run(session, TINY, knobs(), TASKS, "exact", 0.01, registry=registry, limits=LIMITS)
    with zipfile.ZipFile(zipped) as zf:
        names = set(zf.namelist())
        run_json = json.loads(zf.read("verl/run.json"))
    for tool, script in (("trl", "train_grpo.py"), ("verl", "run_verl.sh"), ("openrlhf", "run_openrlhf.sh")):
        assert {f"{tool}/{script}", f"{tool}/reward.py", f"{tool}/README.md",
                f"{tool}/adapter/adapter_model.safetensors"} <= names, tool
    assert run_json["tasks"] == [{"prompt": p, "expected": e, "held_out": False} for p, e in TASKS]
    assert run_json["reward"]["match_mode"] == "exact" and run_json["eos_token"] == "<|im_end|>"
    with pytest.raises(gr.Error, match="task table is empty"):
        h.export_run(session, TINY, knobs(), [["", ""]], "contains", 0.002, registry=registry, limits=LIMITS)


def _corrupt_files(tmp_path: Path, state) -> dict[str, list[str]]:
    """Broken uploads in the older format (adapter.safetensors + adapter_config.json) and PEFT's."""
    save_policy_state(state, tmp_path / "good")
    save_peft_adapter(state, tmp_path / "peft")
    ia3 = tmp_path / "ia3" / "adapter_config.json"
    ia3.parent.mkdir()
    ia3.write_text(json.dumps({**json.loads((tmp_path / "peft" / "adapter_config.json").read_text()),
                               "peft_type": "IA3"}))
    bad_json = tmp_path / "bad" / "adapter_config.json"
    bad_json.parent.mkdir()
    bad_json.write_text("{not json")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    not_zip = tmp_path / "adapter.zip"
    not_zip.write_bytes(b"not a zip")
    config = json.loads((tmp_path / "good" / "adapter_config.json").read_text())
    config["lora"]["r"] = 2  # shapes no longer fit
    mismatched = tmp_path / "mismatch" / "adapter_config.json"
    mismatched.parent.mkdir()
    mismatched.write_text(json.dumps(config))
    other_model = tmp_path / "other" / "adapter_config.json"
    other_model.parent.mkdir()
    other_model.write_text(json.dumps({**json.loads((tmp_path / "good" / "adapter_config.json").read_text()),
                                       "model_name": "qwen2-0.5b-instruct"}))
    st = str(tmp_path / "good" / "adapter.safetensors")
    return {
        "is not valid JSON": [st, str(bad_json)],
        "not a readable safetensors": [str(garbage), str(tmp_path / "good" / "adapter_config.json")],
        "not a readable zip": [str(not_zip)],
        "shape": [st, str(mismatched)],
        "trained on 'qwen2-0.5b-instruct'": [st, str(other_model)],
        "Missing adapter_config.json": [st],
        "not a PEFT LoRA adapter": [str(tmp_path / "peft" / "adapter_model.safetensors"), str(ia3)],
    }


def test_corrupt_or_mismatched_adapter_is_a_clear_error_and_changes_nothing(session, registry, tmp_path):
    run(session, registry, steps=2)
    cases = _corrupt_files(tmp_path, session.policy_state)
    before = snapshot(session)
    for fragment, files in cases.items():
        with pytest.raises(gr.Error) as info:
            h.import_adapter(session, files, TINY, knobs(), registry=registry, limits=LIMITS)
        assert fragment in info.value.message, (fragment, info.value.message)
        assert same(before, snapshot(session)), fragment
    assert gate_is_free(MODEL_GATE)


# --- bad input --------------------------------------------------------------------------------

BAD_INPUTS = {
    "empty table": (dict(table=[["", ""]]), "task table is empty"),
    "missing expected": (dict(table=[["Say yes.", ""]]), "has no expected answer"),
    "steps above the server limit": (dict(knobs=dict(steps=LIMITS.max_steps + 1)), "limited to"),
    "batch above the server limit": (dict(knobs=dict(batch_size=LIMITS.max_batch + 1)), "limited to"),
    "knob out of range": (dict(knobs=dict(clip_eps=-1)), "Clip ε must be between"),
    "knob wrong type": (dict(knobs=dict(learning_rate="fast")), "Learning rate must be a number"),
    "unknown choice": (dict(knobs=dict(kl_estimator="k9")), "KL estimator must be one of"),
    "no matching LoRA targets": (dict(knobs=dict(lora_targets="no_such_layer"), fresh=True), "No Linear layer matches"),
    "bad regex": (dict(table=[["Say yes.", "ye(s"]], match="regex"), "not a valid regular expression"),
    "bad match mode": (dict(match="fuzzy"), "Match mode must be one of"),
    "disallowed model": (dict(limits=Limits(allowed_models=("smollm2-135m-instruct",))), "not available"),
    "unknown model": (dict(model="/no/such/model/dir", fresh=True), "Could not load model"),
    "LoRA shape changed after training": (dict(knobs=dict(lora_r=4)), "LoRA settings now differ"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_clear_error_and_changes_nothing(case, session, registry):
    spec, fragment = BAD_INPUTS[case]
    if not spec.get("fresh"):  # most checks run on a session that already has an adapter
        run(session, registry, steps=1)
    before = snapshot(session)
    limits = spec.get("limits", LIMITS)
    with pytest.raises(gr.Error) as info:
        model = h.resolve_model(spec.get("model", TINY), "", limits)
        list(h.train(session, model, knobs(**spec.get("knobs", {})), spec.get("table", TASKS),
                     spec.get("match", "contains"), 0.002, registry=registry, limits=limits))
    assert fragment in info.value.message
    assert "Traceback" not in info.value.message
    assert same(before, snapshot(session))
    assert not session.running and gate_is_free(MODEL_GATE)


# Errors only loading the model can find; every other one the page's quick check reports first.
NEEDS_THE_MODEL = ("no matching LoRA targets", "unknown model")


@pytest.mark.parametrize("case", [c for c in BAD_INPUTS if c not in NEEDS_THE_MODEL])
def test_the_quick_check_reports_bad_input_before_training_starts(case, session, registry):
    """The page runs check_train as its own event before the training one, so the message
    appears on the tab where the mistake is and no output is marked as failed."""
    spec, fragment = BAD_INPUTS[case]
    if not spec.get("fresh"):
        run(session, registry, steps=1)
    before = snapshot(session)
    limits = spec.get("limits", LIMITS)
    with pytest.raises(gr.Error) as info:
        model = h.resolve_model(spec.get("model", TINY), "", limits)
        h.check_train(session, model, knobs(**spec.get("knobs", {})), spec.get("table", TASKS),
                      spec.get("match", "contains"), 0.002, limits=limits)
    assert fragment in info.value.message
    assert same(before, snapshot(session))


def test_compare_and_evaluate_during_training_are_refused_at_once(session, registry):
    """Their model job would wait in the queue behind the run; the quick check answers now."""
    gen = h.train(session, TINY, knobs(steps=50), TASKS, "contains", 0.002, registry=registry, limits=LIMITS)
    next(gen)
    try:
        with pytest.raises(gr.Error, match="Press Stop first, then Compare"):
            h.check_compare(session, TINY, knobs(), "Say yes.", limits=LIMITS)
        with pytest.raises(gr.Error, match="Press Stop first, then Evaluate"):
            h.check_evaluate(session, TINY, knobs(), TASKS, "contains", 0.002, 2, limits=LIMITS)
    finally:
        h.stop(session)
        list(gen)


def test_bad_compare_and_evaluate_inputs(session, registry):
    with pytest.raises(gr.Error, match="Type a prompt"):
        h.compare(session, TINY, knobs(), "   ", registry=registry, limits=LIMITS)
    with pytest.raises(gr.Error, match="limit is"):
        h.compare(session, TINY, knobs(), "x" * (LIMITS.max_prompt_chars + 1), registry=registry, limits=LIMITS)
    with pytest.raises(gr.Error, match="Samples per task must be between"):
        h.evaluate(session, TINY, knobs(), TASKS, "contains", 0.002, 0, registry=registry, limits=LIMITS)
    with pytest.raises(gr.Error, match="Length penalty must be between"):
        h.evaluate(session, TINY, knobs(), TASKS, "contains", 5, 1, registry=registry, limits=LIMITS)


def test_adapter_trained_on_another_model_is_refused(session, registry):
    run(session, registry, steps=1)
    before = snapshot(session)
    session.model_name = "smollm2-135m-instruct"  # as if trained there
    with pytest.raises(gr.Error, match="trained on 'smollm2-135m-instruct'"):
        list(h.train(session, TINY, knobs(), TASKS, "contains", 0.002, registry=registry, limits=LIMITS))
    assert session.history == before[1]


def test_second_run_in_the_same_session_is_refused_while_running(session, registry):
    gen = h.train(session, TINY, knobs(steps=50), TASKS, "contains", 0.002, registry=registry, limits=LIMITS)
    next(gen)
    with pytest.raises(gr.Error, match="already going"):
        list(h.train(session, TINY, knobs(), TASKS, "contains", 0.002, registry=registry, limits=LIMITS))
    h.stop(session)
    list(gen)
    assert not session.running


# --- tasks, presets, limits, sessions ---------------------------------------------------------

def test_task_presets_upload_and_download(session, tmp_path):
    rows, mode = h.preset_tasks("seed-zh")
    assert mode == "contains" and len(rows) == 4 and rows[0][1] == "小鱼儿"
    path = h.download_tasks(session, rows, LIMITS)
    assert h.upload_tasks(path, LIMITS) == rows
    bad = tmp_path / "bad.csv"
    bad.write_text("question,answer\nx,y\n")
    with pytest.raises(gr.Error, match="header 'prompt,expected'"):
        h.upload_tasks(str(bad), LIMITS)


def test_preset_knobs_respect_limits():
    small = Limits(max_steps=5, max_batch=2, max_new_tokens=8)
    values = h.preset_knobs("quick-cpu", small)
    assert values["steps"] == 5 and values["batch_size"] == 2 and values["max_new_tokens"] == 8
    assert values["num_minibatches"] <= values["batch_size"]
    assert h.preset_knobs("seed", LIMITS)["batch_size"] == 1
    h.build_config(values, small)  # a preset always passes validation


def test_limits_from_env():
    assert limits_from_env({}) == Limits()
    env = {"PPO_DEMO_MAX_STEPS": "10", "PPO_DEMO_MAX_BATCH": "4", "PPO_DEMO_QUEUE_SIZE": "3",
           "PPO_DEMO_ALLOWED_MODELS": "smollm2-135m-instruct, Qwen2-0.5B-Instruct", "PPO_DEMO_MODEL": TINY}
    limits = limits_from_env(env)
    assert (limits.max_steps, limits.max_batch, limits.queue_size) == (10, 4, 3)
    assert limits.allowed_models == ("smollm2-135m-instruct", "qwen2-0.5b-instruct", TINY)
    assert limits.model_allowed(TINY) and not limits.model_allowed("gpt2")
    assert limits_from_env({"PPO_DEMO_MODEL": TINY}).allowed_models is None  # any model locally
    for bad, message in [({"PPO_DEMO_MAX_STEPS": "lots"}, "PPO_DEMO_MAX_STEPS must be a whole number"),
                         ({"PPO_DEMO_MAX_BATCH": "0"}, "PPO_DEMO_MAX_BATCH must be at least 1"),
                         ({"PPO_DEMO_ALLOWED_MODELS": " , "}, "names no model"),
                         ({"PPO_DEMO_ALLOWED_MODELS": "qwen2-0.5b-instruct"}, "PPO_DEMO_MODEL=smollm2")]:
        with pytest.raises(LimitsError, match=message):
            limits_from_env(bad)


def test_session_store_close_stops_run_and_frees_state(registry):
    store = SessionStore()
    session = store.get("tab-1")
    assert store.get("tab-1") is session
    gen = h.train(session, TINY, knobs(steps=50), TASKS, "contains", 0.002, registry=registry, limits=LIMITS)
    next(gen)
    next(gen)
    job = session.job
    store.close("tab-1")  # what demo.unload does
    list(gen)
    job.join(30)
    assert "tab-1" not in store and session.stop_event.is_set() and session.policy_state is None
    assert gate_is_free(MODEL_GATE)


def test_registry_loads_each_model_once():
    calls = []

    def loader(name):
        calls.append(name)
        return object()

    registry = ModelRegistry(loader)
    threads = [threading.Thread(target=registry.get, args=(TINY,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [TINY] and registry.get(TINY) is registry.get("TINY-RANDOM")


def test_heatmap_colours_every_token(session, registry):
    run(session, registry, steps=1)
    record = session.last_rollouts[0]
    for quantity in QUANTITIES:
        page = heatmap_html(record, quantity)
        assert page.count("class='tok'") == len(record.tokens)
    assert "Train a step" in heatmap_html(None)
    with pytest.raises(ValueError):
        heatmap_html(record, "nonsense")


def test_metrics_csv_has_a_row_per_step():
    from ppo_demo.ui.runs import RunBook

    book = RunBook()
    run = book.begin({"kl_coef": 0.05}, {}, [], TINY)
    book.record_step(run, {"step": 1, "reward_mean": 0.5}, None)
    book.record_step(run, {"step": 2, "reward_mean": 0.7, "kl_mean": 0.1}, None)
    lines = book.metrics_csv().strip().splitlines()
    header = lines[0].split(",")
    assert header[:2] == ["run", "run_number"] and "step" in header and len(lines) == 3


# --- runs -------------------------------------------------------------------------------

def test_reset_keeps_the_run_and_compare_can_use_any_kept_runs_adapter(session, registry):
    run(session, registry, steps=2)
    prompt = "Say yes."
    first_base, first_adapted = h.compare(session, TINY, knobs(), prompt, registry=registry, limits=LIMITS)
    view = h.reset(session)
    assert "run 1" in view.status and "kept" in view.status and session.policy_state is None
    run(session, registry, steps=2, kl_coef=0.5, seed=7)
    assert [r.name() for r in session.runs.runs] == ["run 1", "run 2 · KL coef β 0.5, Seed 7"]
    assert session.history[0]["step"] == 1  # run 2 started from the base model
    # Compare against run 1 (not the current run 2): the same answers as when run 1 was current.
    assert h.compare(session, TINY, knobs(), prompt, registry=registry, limits=LIMITS,
                     run_number=1) == (first_base, first_adapted)
    table = h.evaluate(session, TINY, knobs(), TASKS, "contains", 0.002, 1, registry=registry, limits=LIMITS,
                       run_number=1, lang="zh")
    assert list(table.columns)[:2] == ["任务", "期望答案"] and table.iloc[-1, 0] == "全部任务"


def test_train_after_stop_continues_the_current_run_and_says_what_a_press_will_do(session, registry):
    run(session, registry, steps=2)
    assert h.next_press(session, 3) == "Train continues run 1: 3 more steps (steps 3–5)."
    run(session, registry, steps=3)
    assert len(session.runs.runs) == 1 and [m["step"] for m in session.history] == [1, 2, 3, 4, 5]


def test_the_cap_on_kept_runs_is_a_message_before_anything_starts(registry):
    from ppo_demo.ui.runs import RunBook

    session = Session("capped", runs=RunBook(max_runs=1))
    try:
        run(session, registry, steps=1)
        h.reset(session)
        with pytest.raises(gr.Error, match="at most 1 runs"):
            h.check_train(session, TINY, knobs(), TASKS, "contains", 0.002, limits=LIMITS)
        h.delete_run(session, 1)
        assert session.runs.runs == []
        run(session, registry, steps=1)
        assert [r.number for r in session.runs.runs] == [2]
    finally:
        session.close()


def test_kl_demo_trains_three_runs_that_differ_only_in_beta(session, registry):
    h.queue_kl_demo(session, 1)
    views = run(session, registry, steps=1)
    assert [r.knobs["kl_coef"] for r in session.runs.runs] == [0.0, 0.05, 0.5]
    assert [r.name() for r in session.runs.runs][1:] == ["run 2 · KL coef β 0.05", "run 3 · KL coef β 0.5"]
    assert len({r.knobs["seed"] for r in session.runs.runs}) == 1
    assert all(r.steps == 1 for r in session.runs.runs) and session.runs.planned == []
    assert views[-1].finished
    assert h.export_runs_csv(session).endswith("metrics-all-runs.csv")


def test_status_and_messages_follow_the_pages_language(session, registry):
    views = list(h.train(session, TINY, knobs(steps=1), TASKS, "contains", 0.002, registry=registry,
                         limits=LIMITS, lang="zh"))
    assert views[-1].status.startswith("完成：1 步") and "运行 1" in views[-1].status
    with pytest.raises(gr.Error, match="没有期望答案"):
        h.check_train(session, TINY, knobs(), [["Say yes.", ""]], "contains", 0.002, limits=LIMITS, lang="zh")
    with pytest.raises(gr.Error, match="学习率 必须在"):
        h.check_train(session, TINY, knobs(learning_rate=5.0), TASKS, "contains", 0.002, limits=LIMITS, lang="zh")


def test_registry_says_when_a_model_is_loading():
    started, release = threading.Event(), threading.Event()

    def slow_loader(name):
        started.set()
        release.wait(10)
        return object()

    registry = ModelRegistry(slow_loader)
    assert registry.load_state(TINY) == ("not loaded", "")
    thread = registry.preload(TINY)
    started.wait(10)
    assert registry.load_state(TINY)[0] == "loading"
    release.set()
    thread.join(10)
    assert registry.load_state(TINY) == ("ready", "")


def test_a_kept_run_drops_its_optimizer_moments_the_current_run_keeps_them(session, registry):
    run(session, registry, steps=2)
    assert session.policy_state.optimizer is not None  # Train after Stop continues exactly
    h.reset(session)
    kept = session.runs.runs[0]
    assert kept.training_state is not None and kept.training_state.optimizer is None
    assert kept.training_state.tensors  # the adapter stays for Compare / Evaluate
