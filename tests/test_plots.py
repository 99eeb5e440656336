"""Metrics history -> plot frames: what the charts are given."""

import math

from ppo_demo.ui.plots import colour_map, metric_frame, task_label


def test_task_labels_are_numbered_and_named_by_their_answer():
    assert task_label(0, "4") == "task 1 (4)"
    assert task_label(2, "I like machine learning") == "task 3 (I like mach…)"


def test_every_task_is_a_series_from_the_first_step_so_the_colours_never_change_mid_run():
    labels = [task_label(0, "yes"), task_label(1, "no")]
    history = [{"step": 3, "reward_mean": 0.5, "success_rate": 0.5, "task_reward/0": 1.0}]  # task 2 not sampled yet
    frame = metric_frame(history, "reward", labels)
    assert set(frame["series"]) == {"mean reward", "success rate", *labels}
    empty = frame[frame["series"] == labels[1]]
    assert len(empty) == 1 and math.isnan(empty["value"].iloc[0])  # a point that draws nothing
    history.append({"step": 4, "reward_mean": 0.1, "success_rate": 0.0, "task_reward/1": -1.0})
    later = metric_frame(history, "reward", labels)
    assert colour_map(later) == colour_map(frame)
    assert later[later["series"] == labels[1]]["value"].tolist()[-1] == -1.0


def test_skipped_updates_leave_gaps_not_zeros():
    history = [{"step": 1, "policy_loss": 0.2, "entropy": 2.0}, {"step": 2, "policy_loss": math.nan, "entropy": 1.9}]
    frame = metric_frame(history, "policy")
    assert frame[frame["series"] == "policy loss"]["step"].tolist() == [1]
