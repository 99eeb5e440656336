"""The token heatmap's PPO-ratio and clip-case views (on a hand-made rollout record), the plots
without a critic and with β, and the CLI's messages for the estimator knobs."""

import re

import pytest

from ppo_demo.ppo import CLIP_CASES
from ppo_demo.trainer import RolloutRecord
from ppo_demo.ui.heatmap import CASE_STYLE, QUANTITIES, heatmap_html, token_values


def record(ratios=(0.5, 1.0, 1.5, 0.7, 1.1, 1.3, 1.0), cases=(0, 1, 2, 3, 4, 5, 6)):
    n = 7
    return RolloutRecord(
        task_index=0, prompt="Say only the word: hello", expected="hello", response="a b c d e f g", score=1.0,
        hit=True, ended_with_eos=True, tokens=list("abcdefg"), logprobs=[-1.0] * n, ref_logprobs=[-1.0] * n,
        kl=[0.0] * n, values=[0.0] * n, advantages=[1.0, 1.0, 1.0, -1.0, -1.0, -1.0, 0.0],
        train_advantages=[1.0, 1.0, 1.0, -1.0, -1.0, -1.0, 0.0], returns=[1.0] * n, rewards=[0.0] * (n - 1) + [1.0],
        ratios=list(ratios), clip_cases=list(cases))


def test_every_quantity_colours_every_token():
    for quantity in QUANTITIES:
        assert heatmap_html(record(), quantity).count("class='tok'") == 7


def test_clip_case_view_colours_each_token_by_its_case_and_explains_all_cases():
    page = heatmap_html(record(), "clip_case")
    assert re.findall(r"class='tok' data-case='(\d)'", page) == ["0", "1", "2", "3", "4", "5", "6"]
    # the clipped tokens (cases 2 and 3) are grey, the pushing ones are not
    for code in range(7):
        background = CASE_STYLE[code][0]
        assert f"data-case='{code}' style='background:{background}" in page
    assert CASE_STYLE[2][0] == CASE_STYLE[3][0] != CASE_STYLE[1][0]
    legend = page[page.index("clip-legend"):]
    assert legend.count("class='case'") == len(CLIP_CASES)
    for case in CLIP_CASES:
        assert case["why"] in legend
    assert "③ A&gt;0, ρ&gt;1+ε: clipped, no gradient" in legend and "⑥ A&lt;0, ρ&gt;1+ε: pushed down" in legend


def test_ppo_ratio_view_is_centred_on_one_and_in_the_tooltip():
    page = heatmap_html(record(), "ppo_ratio")
    assert "+0.5" in page and "+1.5" in page  # legend from 1 - 0.5 to 1 + 0.5
    assert "ρ=1.5000" in page and "clipped, no gradient" in page
    assert token_values(record(), "ppo_ratio") == [0.5, 1.0, 1.5, 0.7, 1.1, 1.3, 1.0]


def test_a_step_without_an_update_says_so():
    page = heatmap_html(record(ratios=(), cases=()), "clip_case")
    assert page.count("class='tok'") == 7 and "No update ran" in page
    assert "ρ=" not in heatmap_html(record(ratios=(), cases=()), "advantage")


def test_unknown_quantity_is_an_error():
    with pytest.raises(ValueError):
        heatmap_html(record(), "nonsense")


# --- plots -------------------------------------------------------------------------------------

def test_critic_plot_says_there_is_no_critic_instead_of_drawing_a_number():
    import json

    from ppo_demo.ui.plots import NO_CRITIC, chart_frame, line_chart, plot_value

    nan = float("nan")
    history = [{"step": 1, "value_loss": nan, "explained_variance": nan},
               {"step": 2, "value_loss": nan, "explained_variance": nan}]
    frame = chart_frame(history, "critic")
    assert list(frame["series"]) == [NO_CRITIC] and frame["value"].isna().all()
    # the chart names it in the legend and draws no point (a null value; the spec stays valid JSON)
    spec = json.loads(plot_value(line_chart(frame)).plot)
    assert spec["encoding"]["color"]["scale"]["domain"] == [NO_CRITIC]
    assert [r["value"] for r in spec["data"]["values"]] == [None]
    chinese = chart_frame(history, "critic", lang="zh")
    assert list(chinese["series"]) == ["无：没有价值网络（grpo、rloo、reinforce）"]
    with_critic = chart_frame([{"step": 1, "value_loss": 0.3, "explained_variance": 0.1}], "critic")
    assert NO_CRITIC not in set(with_critic["series"]) and len(with_critic) == 2


def test_kl_chart_says_beta_in_its_title_and_keeps_one_quantity_per_axis():
    """β is a third quantity: the KL chart's title says it (first → latest when the adaptive
    controller moved it); its curve is the Runs overlay's "β (KL coef)"."""
    from ppo_demo.ui.plots import chart_frame, train_chart_spec

    history = [{"step": 1, "kl_mean": 0.01, "kl_sum_mean": 0.1, "kl_coef": 0.05},
               {"step": 2, "kl_mean": 0.02, "kl_sum_mean": 0.2, "kl_coef": 0.051}]
    assert "β (KL coef)" not in set(chart_frame(history, "kl")["series"])
    assert train_chart_spec(history, "kl")["title"]["text"] == "KL to the reference · β 0.05→0.051"
    assert train_chart_spec(history[:1], "kl", lang="zh")["title"]["text"] == "与参考模型的 KL · β 0.05"


def test_the_clip_case_view_speaks_the_pages_language():
    page = heatmap_html(record(), "clip_case", "zh")
    legend = page[page.index("clip-legend"):]
    assert "③ A&gt;0，ρ&gt;1+ε：被裁剪，无梯度" in legend and "坏 token 变得更可能" in legend
    assert "clipped" not in legend and "pushed" not in legend
    assert "这一步没有进行更新" in heatmap_html(record(ratios=(), cases=()), "clip_case", "zh")
    assert "PPO 的 ρ_t" in heatmap_html(record(), "ppo_ratio", "zh")


# --- CLI ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["--advantage-estimator", "grpo", "--group-size", "1"], "GRPO compares the answers to one prompt"),
    (["--advantage-estimator", "rloo", "--batch-size", "10", "--group-size", "4"], "must be a multiple of the group size"),
    (["--kl-target", "0"], "Target KL must be above 0"),
    (["--kl-in", "both"], "invalid choice"),
])
def test_cli_rejects_bad_estimator_settings_in_one_line(args, message, capsys):
    from ppo_demo.cli import main

    assert main(["train", "--model", "tiny-random", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


# --- the app's handlers (tiny-random) -----------------------------------------------------------

def test_app_trains_grpo_with_adaptive_kl_and_shows_no_critic_and_the_clip_cases():
    from ppo_demo.ui import handlers as h
    from ppo_demo.ui.limits import limits_from_env
    from ppo_demo.ui.plots import NO_CRITIC, chart_frame, train_chart_spec
    from ppo_demo.ui.session import ModelRegistry, Session

    limits = limits_from_env({"PPO_DEMO_MODEL": "tiny-random"})
    knobs = h.default_knobs(limits) | dict(steps=2, batch_size=4, num_minibatches=2, max_new_tokens=6,
                                           advantage_estimator="grpo", group_size=2, kl_target=0.5, kl_horizon=10)
    session = Session("estimators")
    try:
        views = list(h.train(session, "tiny-random", knobs, [["Say yes.", "yes"], ["Say no.", "no"]], "contains",
                             0.002, registry=ModelRegistry(), limits=limits))
        assert views[-1].error is None and len(session.history) == 2
        assert list(chart_frame(session.history, "critic")["series"]) == [NO_CRITIC]
        assert "β 0.05→" in train_chart_spec(session.history, "kl")["title"]["text"]  # the controller moved it
        record = views[-1].rollouts[0]
        assert "data-case=" in heatmap_html(record, "clip_case")
    finally:
        session.close()


def test_app_turns_a_bad_group_size_into_a_clear_message():
    import gradio as gr

    from ppo_demo.ui import handlers as h
    from ppo_demo.ui.limits import limits_from_env

    from ppo_demo.ui.session import Session

    limits = limits_from_env({"PPO_DEMO_MODEL": "tiny-random"})
    knobs = h.default_knobs(limits) | dict(advantage_estimator="rloo", group_size=1)
    with pytest.raises(gr.Error, match="RLOO compares the answers to one prompt"):
        h.check_train(Session("bad-g"), "tiny-random", knobs, [["Say yes.", "yes"]], "contains", 0.002,
                      limits=limits)
