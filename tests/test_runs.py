"""A session's runs: names that say what differs, continue vs new run, the cap, the table, the
combined CSV and the overlay frames. Pure data: no model, no Gradio event."""

import io
import math

import pandas as pd
import pytest

from ppo_demo.config import PRESETS, TrainConfig
from ppo_demo.tasks import Task
from ppo_demo.ui.runs import RunBook, RunsError, kl_demo_plan, knob_differences

KNOBS = TrainConfig.from_dict(PRESETS["quick-cpu"]).to_dict()
REWARD = {"match_mode": "contains", "length_penalty": 0.002}
START = {**KNOBS, **REWARD}  # what the app starts with
TASKS = [Task("What is 2+2?", "4"), Task("Capital of France?", "Paris")]
MODEL = "tiny-random"


def metrics(step, reward, success=0.5, kl=0.01, seconds=2.0):
    return {"step": step, "reward_mean": reward, "success_rate": success, "kl_mean": kl, "step_seconds": seconds,
            "task_reward/0": reward}


def trained(book, knobs=KNOBS, steps=2, reward0=-1.0, state="adapter"):
    run = book.begin(knobs, REWARD, TASKS, MODEL)
    for i in range(steps):
        book.record_step(run, metrics(run.steps + 1, reward0 + 0.5 * i), f"{state}@{run.steps + 1}")
    return run


def test_first_run_is_named_by_what_differs_from_the_start_settings():
    book = RunBook(start_settings=START)
    assert trained(book).name() == "run 1"  # nothing differs: just its number
    book2 = RunBook(start_settings=START)
    assert trained(book2, {**KNOBS, "kl_coef": 0.0}).name() == "run 1 · KL coef β 0"


def test_reset_keeps_the_run_and_the_next_train_starts_a_new_one_named_by_its_difference():
    book = RunBook(start_settings=START)
    first = trained(book)
    book.close_current()  # Reset
    second = trained(book, {**KNOBS, "kl_coef": 0.5})
    assert [r.number for r in book.runs] == [1, 2]
    assert second.name() == "run 2 · KL coef β 0.5"
    assert second.name("zh") == "运行 2 · KL 系数 β 0.5"
    assert first.training_state == "adapter@2" and second.training_state == "adapter@2"
    assert second.history[0]["step"] == 1  # a new run starts from the base model's step 1


def test_the_estimator_knobs_name_a_run_and_an_empty_target_kl_reads_off():
    book = RunBook(start_settings=START)
    trained(book, {**KNOBS, "advantage_estimator": "grpo", "group_size": 4, "kl_target": 0.5})
    # The estimator, the most telling setting, comes first: never the one cut.
    assert book.runs[0].name() == "run 1 · Advantage estimator GRPO (group mean), Target KL 0.5, Group size G 4"
    book.close_current()
    second = trained(book, {**KNOBS, "advantage_estimator": "grpo", "group_size": 4, "kl_target": None})
    assert second.name() == "run 2 · Target KL off" and second.name("zh") == "运行 2 · 目标 KL 关"


def test_train_after_stop_continues_the_current_run_and_records_a_knob_change():
    book = RunBook(start_settings=START)
    run = trained(book, steps=3)
    changed = {**KNOBS, "kl_coef": 0.5}
    assert book.pending_changes(changed, REWARD, TASKS, MODEL) == {"kl_coef": (0.05, 0.5)}
    again = trained(book, changed, steps=2)
    assert again is run and run.steps == 5 and len(book.runs) == 1
    assert [s["step"] for s in run.history] == [1, 2, 3, 4, 5]
    assert run.knobs_at(2)["kl_coef"] == 0.05 and run.knobs_at(3)["kl_coef"] == 0.5
    assert "KL coef β 0.5 from step 4" in book.summary().iloc[0, 1]


def test_memory_only_knobs_and_the_steps_per_press_are_not_differences():
    same = {**KNOBS, "micro_batch_tokens": 64, "gradient_checkpointing": True, "steps": 3}
    assert knob_differences(KNOBS, same) == {}
    assert list(knob_differences(KNOBS, {**KNOBS, "seed": 7, "lora_r": 4})) == ["lora_r", "seed"]  # knob order


def test_name_lists_the_telling_differences_first_then_how_many_more():
    book = RunBook(start_settings=START)
    run = trained(book, {**KNOBS, "seed": 1, "kl_coef": 0.0, "lora_r": 4, "temperature": 0.7})
    assert run.name() == "run 1 · KL coef β 0, LoRA rank r 4, Temperature 0.7, +1 more"
    book.close_current()
    other = book.begin({**KNOBS, "seed": 1, "kl_coef": 0.0, "lora_r": 4, "temperature": 0.7},
                       {**REWARD, "match_mode": "exact"}, TASKS[:1], MODEL)
    assert other.name() == "run 2 · Match mode exact, tasks changed"


def test_cap_on_kept_runs_is_a_clear_message_and_delete_frees_a_slot():
    book = RunBook(start_settings=START, max_runs=2)
    trained(book)
    book.close_current()
    trained(book, {**KNOBS, "seed": 2})
    book.close_current()
    with pytest.raises(RunsError) as caught:
        book.begin(KNOBS, REWARD, TASKS, MODEL)
    assert "at most 2 runs" in str(caught.value) and "Delete a run" in str(caught.value)
    assert "最多保留 2 个运行" in caught.value.in_lang("zh")
    assert len(book.runs) == 2  # the refused run left nothing behind
    book.delete(1)
    assert trained(book, {**KNOBS, "seed": 3}).number == 3  # numbers are never reused


def test_deleting_the_current_run_returns_to_the_base_model_and_unknown_runs_are_a_message():
    book = RunBook(start_settings=START)
    trained(book)
    book.delete(1)
    assert book.current is None and book.runs == []
    with pytest.raises(RunsError, match="no run 1"):
        book.get(1)


def test_a_reset_before_any_step_keeps_no_empty_run():
    book = RunBook(start_settings=START)
    book.begin(KNOBS, REWARD, TASKS, MODEL)  # e.g. the first step failed
    book.close_current()
    assert book.runs == []


def test_a_run_stops_being_current_through_keep_for_comparison():
    book = RunBook(start_settings=START, keep_for_comparison=lambda state: ("slim", state))
    trained(book)
    book.close_current()
    assert book.runs[0].training_state == ("slim", "adapter@2")


def test_summary_table_one_row_per_run_with_final_values_in_both_languages():
    book = RunBook(start_settings=START)
    trained(book, steps=3, reward0=-1.0)  # rewards -1, -0.5, 0
    book.close_current()
    trained(book, {**KNOBS, "kl_coef": 0.5}, steps=2)
    table = book.summary()
    assert list(table.columns) == ["run", "what differs", "steps", "reward (mean of last 3)", "success (last 3)",
                                   "KL/token (last 3)", "time"]
    assert table["run"].tolist() == ["run 1", "run 2 · KL coef β 0.5 (current)"]
    assert table["what differs"].tolist() == ["start settings", "KL coef β 0.5"]
    assert table["steps"].tolist() == [3, 2]
    # The mean of the last 3 steps (-1, -0.5, 0), not the one noisy last batch; success in %.
    assert table["reward (mean of last 3)"].tolist() == [-0.5, -0.75]
    assert table["success (last 3)"].tolist() == ["50%", "50%"]
    assert table["time"].tolist() == ["6 s", "4 s"]
    assert list(book.summary("zh").columns)[:2] == ["运行", "不同之处"]
    assert book.summary("zh").iloc[0, -1] == "6 秒"
    book.record_step(book.current, {**metrics(3, 0.0), "step_seconds": 120.0})
    assert book.summary().iloc[1, -1] == "2 min 04 s"


def test_metrics_csv_has_every_step_of_every_run_with_its_knobs():
    book = RunBook(start_settings=START)
    trained(book, {**KNOBS, "kl_coef": 0.0}, steps=2)
    book.close_current()
    trained(book, {**KNOBS, "kl_coef": 0.5}, steps=3)
    frame = pd.read_csv(io.StringIO(book.metrics_csv()))
    assert len(frame) == 5
    assert list(frame.columns[:3]) == ["run", "run_number", "model"]
    assert frame.groupby("run_number")["kl_coef"].first().tolist() == [0.0, 0.5]
    assert frame["run"].tolist()[-1] == "run 2 · KL coef β 0.5"
    assert {"match_mode", "length_penalty", "step", "reward_mean", "lora_targets"} <= set(frame.columns)
    assert frame["lora_targets"].iloc[0].startswith("q_proj, k_proj")


def test_overlay_frame_has_one_series_per_chosen_run_and_keeps_each_runs_style():
    book = RunBook(start_settings=START)
    for beta in (0.0, 0.05, 0.5):
        trained(book, {**KNOBS, "kl_coef": beta}, steps=2)
        book.close_current()
    frame = book.overlay_frame("reward_mean")
    assert frame["series"].unique().tolist() == ["run 1 · KL coef β 0", "run 2 · KL coef β 0.05",
                                               "run 3 · KL coef β 0.5"]
    assert frame["step"].tolist() == [1, 2] * 3
    picked = book.overlay_frame("reward_mean", numbers=[1, 3])
    assert picked["series"].nunique() == 2
    assert book.run_styles()["run 3 · KL coef β 0.5"] == 2  # its colour does not move when run 2 is hidden
    assert book.metric_choices()[:3] == ["reward_mean", "success_rate", "kl_mean"]


def test_overlay_frame_leaves_out_non_finite_values():
    book = RunBook(start_settings=START)
    run = book.begin(KNOBS, REWARD, TASKS, MODEL)
    book.record_step(run, {**metrics(1, 0.0), "kl_mean": math.nan}, "s")
    book.record_step(run, metrics(2, 0.1), "s")
    assert book.overlay_frame("kl_mean")["step"].tolist() == [2]


def test_kl_demo_queues_three_runs_that_differ_only_in_beta():
    book = RunBook(start_settings=START)
    book.plan(kl_demo_plan())
    assert book.next_press(10) == "Train runs the 3 queued runs: KL coef β 0, KL coef β 0.05, KL coef β 0.5."
    names = []
    planned, book.planned = list(book.planned), []  # as Train takes the queue (handlers.train)
    for override in planned:
        run = book.start({**KNOBS, **override}, REWARD, TASKS, MODEL)
        book.record_step(run, metrics(1, 0.0), "s")
        names.append(run.name())
    assert names == ["run 1 · KL coef β 0", "run 2 · KL coef β 0.05", "run 3 · KL coef β 0.5"]
    assert {r.knobs["seed"] for r in book.runs} == {KNOBS["seed"]}


def test_kl_demo_needs_room_for_its_three_runs():
    book = RunBook(start_settings=START, max_runs=3)
    trained(book)
    with pytest.raises(RunsError, match="needs 3 free run slots"):
        book.plan(kl_demo_plan())
    assert book.planned == []


def test_next_press_says_what_train_will_do():
    book = RunBook(start_settings=START)
    assert book.next_press(10) == "Train starts run 1: 10 steps from the base model."
    trained(book, steps=4)
    assert book.next_press(10) == "Train continues run 1: 10 more steps (steps 5–14)."
    assert book.next_press(10, "zh") == "“训练”将继续 运行 1：再训练 10 步（第 5–14 步）。"
    book.close_current()
    assert book.next_press(6) == "Train starts run 2: 6 steps from the base model."


def test_overlay_chart_styles_runs_by_number_and_puts_shares_on_a_percent_axis():
    book = RunBook(start_settings=START)
    for beta in (0.0, 0.5):
        trained(book, {**KNOBS, "kl_coef": beta}, steps=2)
        book.close_current()
    spec = book.overlay_chart("success_rate", numbers=[2], lang="zh")
    colour = spec["encoding"]["color"]["scale"]
    assert colour["domain"] == ["运行 2 · KL 系数 β 0.5"]
    from ppo_demo.ui.plots import PALETTE
    assert colour["range"] == [PALETTE[1]]  # run 2's colour even when run 1 is hidden
    assert spec["encoding"]["y"]["axis"]["format"] == ".0%"
    assert spec["encoding"]["y"]["axis"]["title"] == "成功率"
    assert book.run_options() == [("run 1 · KL coef β 0", 1), ("run 2 · KL coef β 0.5", 2)]
    assert ("mean reward", "reward_mean") in book.metric_options()
    assert ("平均奖励", "reward_mean") in book.metric_options("zh")


def test_later_runs_are_named_by_what_differs_from_the_first_run_and_can_be_renamed():
    """The lesson's GRPO run was named by what differed from the run before it, cut after two
    items ('PPO epochs 2, Clip ε 0.2, +2 more'): the estimator, the point, was hidden."""
    book = RunBook(start_settings=START)
    trained(book, dict(KNOBS))
    book.close_current()
    trained(book, {**KNOBS, "clip_eps": 10.0, "ppo_epochs": 8})
    book.close_current()
    grpo = trained(book, {**KNOBS, "advantage_estimator": "grpo", "group_size": 4})
    assert grpo.name() == "run 3 · Advantage estimator GRPO (group mean), Group size G 4"
    assert grpo.name("zh").startswith("运行 3 · ") and "GRPO（组内均值）" in grpo.name("zh")
    assert book.runs[1].name() == "run 2 · Clip ε 10, PPO epochs 8"  # the epochs are not hidden
    book.delete(1)  # the first run's settings stay the reference
    book.close_current()
    fourth = trained(book, {**KNOBS, "kl_coef": 0.5})
    assert fourth.name() == "run 4 · KL coef β 0.5"

    book.rename(3, "  GRPO   lesson ")
    assert book.get(3).name() == "run 3 · GRPO lesson" and book.get(3).name("zh") == "运行 3 · GRPO lesson"
    assert "run 3 · GRPO lesson" in book.overlay_frame("reward_mean")["series"].tolist()
    book.rename(3, "")
    assert book.get(3).name() == "run 3 · Advantage estimator GRPO (group mean), Group size G 4"
    with pytest.raises(RunsError, match="at most 60 characters"):
        book.rename(3, "x" * 61)
