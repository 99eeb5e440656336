"""Held-out tasks: a column kept by every file format and export, never trained on, evaluated apart.

Run: OMP_NUM_THREADS=1 python -m pytest tests/test_tasks_heldout.py -q
"""

import json

import pytest

from ppo_demo.config import TrainConfig
from ppo_demo.evaluation import evaluate
from ppo_demo.export import export_record, make_run_record, read_run_record, write_run_record
from ppo_demo.export.run_record import ExportError
from ppo_demo.reward import RewardConfig
from ppo_demo.tasks import (ENGLISH_TASKS, Task, TaskError, held_out_tasks, parse_tasks_text, tasks_from_rows,
                            tasks_to_csv, training_tasks)
from ppo_demo.text import LocalizedError
from ppo_demo.trainer import NothingToTrainError, PPOTrainer

REWARD = RewardConfig(match_mode="contains")
TRAIN = [Task("say hi", "h"), Task("count", "1")]
HELD = [Task("say yo", "y", held_out=True)]


def config(**knobs):
    return TrainConfig(**{**dict(steps=2, batch_size=4, max_new_tokens=6, ppo_epochs=1, num_minibatches=1,
                                 seed=7), **knobs}).validate()


def test_csv_round_trip_keeps_the_column():
    tasks = TRAIN + HELD
    text = tasks_to_csv(tasks)
    assert text.splitlines()[0] == "prompt,expected,held_out"
    assert parse_tasks_text(text, "csv") == tasks
    assert [t.held_out for t in parse_tasks_text(text, "csv")] == [False, False, True]


def test_old_two_column_files_and_json_key():
    assert parse_tasks_text("prompt,expected\na,b\n", "csv") == [Task("a", "b")]
    tasks = parse_tasks_text(json.dumps([{"prompt": "a", "expected": "b", "held_out": True},
                                         {"prompt": "c", "expected": "d"}]), "json")
    assert [t.held_out for t in tasks] == [True, False]


@pytest.mark.parametrize("cell,held", [("yes", True), ("TRUE", True), ("1", True), (True, True), (1, True),
                                       ("", False), ("no", False), (False, False), (0, False), (None, False),
                                       (float("nan"), False)])
def test_held_out_cells_a_person_types(cell, held):
    assert tasks_from_rows([["p", "e", cell]])[0].held_out is held


def test_a_bad_held_out_value_names_the_row_in_both_languages():
    with pytest.raises(TaskError, match="row 2") as info:
        tasks_from_rows([["a", "b", ""], ["c", "d", "maybe"]])
    assert isinstance(info.value, LocalizedError)
    assert "第 2 行" in info.value.in_lang("zh")


def test_english_preset_ships_held_out_tasks_after_its_training_tasks():
    held = held_out_tasks(ENGLISH_TASKS)
    assert len(held) >= 3 and len(training_tasks(ENGLISH_TASKS)) == 4
    # training tasks first: a run on the preset trains exactly as on its four training tasks
    assert ENGLISH_TASKS[:4] == training_tasks(ENGLISH_TASKS)


def test_held_out_tasks_are_never_trained_on(tiny):
    trainer = PPOTrainer(tiny, config(steps=3, batch_size=6), [HELD[0], *TRAIN, Task("x", "x", held_out=True)],
                         REWARD)
    results = list(trainer.train())
    picked = {r.task_index for result in results for r in result.rollouts}
    assert picked == {1, 2}  # the two training tasks, at rows 1 and 2
    for result in results:
        assert 0.0 <= result.metrics["heldout_success_rate"] <= 1.0


def test_held_out_tasks_do_not_change_the_training_batch(tiny):
    """The same training tasks with and without held-out ones: the same responses, rewards and
    weights (the held-out answers are sampled with a seed of their own)."""
    import torch

    from ppo_demo.models import load_model

    def run(tasks):
        torch.manual_seed(0)
        loaded = load_model("tiny-random", device="cpu")
        trainer = PPOTrainer(loaded, config(learning_rate=1e-2), tasks, REWARD)
        results = list(trainer.train())
        return [[r.response for r in res.rollouts] for res in results], trainer.state().tensors

    plain_texts, plain_weights = run(TRAIN)
    held_texts, held_weights = run(TRAIN + HELD)
    assert plain_texts == held_texts
    assert all(torch.equal(plain_weights[k], held_weights[k]) for k in plain_weights)


def test_a_run_where_every_task_is_held_out_is_refused(tiny):
    with pytest.raises(NothingToTrainError, match="held out"):
        PPOTrainer(tiny, config(), HELD, REWARD)


def test_evaluate_reports_training_and_held_out_apart(tiny):
    trainer = PPOTrainer(tiny, config(), TRAIN + HELD, REWARD)
    report = evaluate(trainer.runtime, trainer.tasks, REWARD, trainer.config, samples_per_task=2)
    assert [t.held_out for t in report.tasks] == [False, False, True]
    train = [t for t in report.tasks if not t.held_out]
    assert report.adapted_success == pytest.approx(sum(t.adapted_success for t in train) / 2)
    assert report.held_out_adapted_success == report.tasks[2].adapted_success
    no_held = evaluate(trainer.runtime, TRAIN, REWARD, trainer.config, samples_per_task=2)
    assert no_held.held_out_base_success is None


def test_run_record_and_exports_keep_the_column(tmp_path):
    record = make_run_record("tiny-random", TRAIN + HELD, REWARD, config())
    write_run_record(record, tmp_path / "run")
    assert [t.held_out for t in read_run_record(tmp_path / "run").tasks] == [False, False, True]
    export_record(record, "trl", tmp_path / "trl")
    train_rows = (tmp_path / "trl" / "data" / "train.jsonl").read_text(encoding="utf-8")
    held_rows = (tmp_path / "trl" / "data" / "heldout.jsonl").read_text(encoding="utf-8")
    assert "say yo" not in train_rows and "say hi" in train_rows and "say yo" in held_rows
    export_record(record, "openrlhf", tmp_path / "orl")
    prompts = (tmp_path / "orl" / "data" / "prompts.jsonl").read_text(encoding="utf-8")
    assert "say yo" not in prompts and "say yo" in (tmp_path / "orl" / "data" / "heldout.jsonl").read_text()
    assert json.loads((tmp_path / "orl" / "run.json").read_text())["tasks"][2]["held_out"] is True


def test_an_export_with_only_held_out_tasks_is_refused(tmp_path):
    with pytest.raises(ExportError, match="held out"):
        export_record(make_run_record("tiny-random", HELD, REWARD, config()), "trl", tmp_path / "trl")
