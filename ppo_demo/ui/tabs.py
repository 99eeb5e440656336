"""One builder per part of the page. Each creates its components inside the current ``gr.Blocks``
and files them by name in the page's :class:`Components`; ``wiring`` wires the events.

A new tab is one more function here, called from ``layout.build_demo`` (its events wired in ``wiring``); its components are then
reachable by name from every event (``c["my_button"]``, ``c.inputs("prompt", *KNOB_NAMES)``).
"""

from __future__ import annotations

import dataclasses

import gradio as gr
import pandas as pd

from ..config import all_knob_fields, knob_fields
from ..reward import RewardConfig
from ..tasks import TASK_PRESETS
from ..text import has
from . import handlers
from .heatmap import heatmap_html, quantity_choices
from .i18n import I18N, knob_key, t, text
from .limits import Limits
from .plots import CHARTS, ROLLOUT_HEADERS
from .runs import RunBook

TASK_HEADERS = ["prompt", "expected", "held_out"]  # held out: never trained on, evaluated apart
KNOB_NAMES = [f.name for f in knob_fields()]
OPTION_KNOBS = [f.name for f in knob_fields() if f.metadata.get("choices")]  # radios with named options
REWARD_NAMES = [f.name for f in knob_fields(RewardConfig)]
PLOT_NAMES = [f"plot_{name}" for name in CHARTS]


class Components(dict):
    """The page's one name -> component mapping. An event lists the names it reads, and the same
    names become its handler's parameters (and the API's), so inputs cannot drift out of line."""

    def inputs(self, *names: str) -> list[gr.components.Component]:
        return [self[name] for name in names]


def knob_component(f: dataclasses.Field, value, limits: Limits) -> gr.components.Component:
    """One control per knob: radio for choices, checkbox for flags, text for optional numbers,
    slider for short ranges, number box for wide or logarithmic ranges (learning rate, seed,
    coefficients) and for knobs that define their own step."""
    meta, name = f.metadata, f.name
    common = dict(label=I18N(knob_key(name, "label")), info=I18N(knob_key(name, "help")),
                  elem_id=f"knob-{name.replace('_', '-')}")
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    if meta.get("choices"):
        return gr.Radio(choices=option_choices(name), value=value, **common)
    if kind == "bool":
        return gr.Checkbox(value=bool(value), **common)
    if kind == "tuple":
        return gr.Textbox(value=value, **common)
    if kind.endswith("| None"):
        # An optional number (empty = off): a text box, since an empty gr.Number would make the
        # knob a required argument of the API.
        return gr.Textbox(value="" if value is None else str(value), **common)
    if meta.get("step"):
        return gr.Number(value=value, step=meta["step"], **common)
    low, high = meta["low"], min(meta["high"], limits.knob_caps().get(name, meta["high"]))
    logarithmic = low > 0 and high / low >= 1e4
    if kind == "int":
        if high - low <= 512:
            return gr.Slider(minimum=low, maximum=high, step=1, value=value, **common)
        return gr.Number(precision=0, value=value, **common)
    if high <= 5 and not logarithmic:
        return gr.Slider(minimum=low, maximum=high, step=0.01 if high <= 1 else 0.05, value=value, **common)
    # No minimum/maximum on a Number: Gradio's own check would say "Value -1 is less than minimum
    # value 1e-08" without naming the knob; TrainConfig.validate names it and its range.
    return gr.Number(value=value, step=low if logarithmic else 0.01, **common)


def option_choices(knob: str, lang: str = "en") -> list[tuple[str, str]]:
    """(name in ``lang``, value) of a knob's options: the page shows 'GRPO (group mean)' or
    'GRPO（组内均值）', the server still receives 'grpo'."""
    choices = next(f.metadata["choices"] for f in all_knob_fields() if f.name == knob)
    return [(t(f"option.{knob}.{v}", lang) if has(f"option.{knob}.{v}") else v, v) for v in choices]


def preset_choices(lang: str = "en") -> list[tuple[str, str]]:
    """(name in ``lang``, key) of the task presets."""
    return [(t(f"preset.{name}", lang), name) for name in TASK_PRESETS]


# The Knobs tab's sections: the few a lesson changes open at the top, the rest folded by what
# they are about. A knob not named here goes by its config group (lora, rollout -> sampling, ppo).
BASIC_KNOBS = ("steps", "advantage_estimator", "group_size", "kl_coef", "clip_eps", "ppo_epochs", "learning_rate")
MEMORY_KNOBS = ("micro_batch_tokens", "gradient_checkpointing", "share_prompts", "max_bad_updates")
SECTIONS = ("basic", "ppo", "lora", "sampling", "memory")
KNOBS_PER_ROW = 3


def knob_section(f: dataclasses.Field) -> str:
    if f.name in BASIC_KNOBS:
        return "basic"
    if f.name in MEMORY_KNOBS:
        return "memory"
    return {"lora": "lora", "rollout": "sampling"}.get(f.metadata["group"], "ppo")


def knob_sections(fields) -> list[tuple[str, list]]:
    """(section, knobs) in :data:`SECTIONS` order; the basic knobs in the order a lesson meets them."""
    fields = [f for f in fields if f.metadata["group"] != "reward"]  # those sit next to the task table
    by_section = {section: [f for f in fields if knob_section(f) == section] for section in SECTIONS}
    by_section["basic"].sort(key=lambda f: BASIC_KNOBS.index(f.name))
    return [(section, members) for section, members in by_section.items() if members]


def header(c: Components, limits: Limits, model_choices: list[str]) -> None:
    """Title, model choice, and the control bar (Train, Stop, Reset, status)."""
    gr.Markdown(f"# {text('title')}")
    gr.Markdown(text("subtitle"))
    with gr.Row():
        c["model"] = gr.Dropdown(model_choices, value=limits.start_model, label=text("model"),
                                 info=text("model_info"), elem_id="model", scale=2)
        c["custom_model"] = gr.Textbox("", label=text("custom_model"), info=text("custom_model_info"),
                                       placeholder="HuggingFaceTB/SmolLM2-360M-Instruct", elem_id="custom-model",
                                       visible=limits.allowed_models is None, scale=2)
    with gr.Row(elem_id="control-bar"):
        c["train_btn"] = gr.Button(text("train"), variant="primary", elem_id="train-btn", scale=1)
        c["stop_btn"] = gr.Button(text("stop"), variant="stop", elem_id="stop-btn", scale=1)
        c["reset_btn"] = gr.Button(text("reset"), variant="secondary", elem_id="reset-btn", scale=1)
        c["status"] = gr.Textbox(t("status.base"), label=text("status"),
                                 elem_id="status", interactive=False, scale=5, lines=1, max_lines=3)
    # What the next Train press will do (continue which run, how many steps), always in view.
    c["next_press"] = gr.Markdown(elem_id="next-press")
    # Ticks while the model loads, so a page opened during a cold start says so; stops when ready.
    c["load_timer"] = gr.Timer(1.0, active=False)


def tasks_tab(c: Components, limits: Limits, knob_defaults: dict, start_tasks: list, start_match: str) -> None:
    """1. The task table and the reward's knobs."""
    with gr.Tab(text("tab_tasks"), id="tasks"):
        with gr.Row():
            with gr.Column(scale=3):
                c["tasks"] = gr.Dataframe(
                    pd.DataFrame(start_tasks, columns=TASK_HEADERS), headers=TASK_HEADERS,
                    datatype=["str", "str", "bool"], column_count=3, interactive=True, wrap=True,
                    label=text("tasks_table"), elem_id="tasks-table", column_widths=["62%", "24%", "14%"])
                with gr.Row():
                    c["add_row"] = gr.Button(text("add_row"), size="sm", elem_id="add-row")
                    c["remove_row"] = gr.Button(text("remove_row"), size="sm", elem_id="remove-row")
                c["selected_row"] = gr.State(None)  # the row of the cell last clicked (Remove takes it)
                gr.Markdown(text("remove_row_info"), elem_classes=["hint"])
                with gr.Row():
                    c["task_preset"] = gr.Dropdown(preset_choices(), value="english", label=text("task_preset"),
                                                   elem_id="task-preset", scale=2)
                    c["load_preset"] = gr.Button(text("load_preset"), size="sm", scale=1)
                    c["upload_csv"] = gr.UploadButton(text("upload_csv"), file_types=[".csv", ".json"],
                                                      elem_id="upload-csv", size="sm", scale=1)
                    c["download_csv"] = gr.DownloadButton(text("download_csv"), size="sm", scale=1)
                with gr.Row():  # check the reward before training: what would each task pay?
                    c["probe_btn"] = gr.Button(text("probe_btn"), variant="secondary", elem_id="probe-btn", scale=0)
                    gr.Markdown(text("probe_info"), elem_classes=["hint"])
            with gr.Column(scale=2):
                gr.Markdown(f"### {text('reward_settings')}")
                gr.Markdown(text("reward_formula"))
                reward_defaults = {f.name: f.default for f in knob_fields(RewardConfig)} | {"match_mode": start_match}
                for f in knob_fields(RewardConfig):
                    c[f.name] = knob_component(f, reward_defaults[f.name], limits)
                for f in knob_fields():
                    if f.metadata["group"] == "reward":
                        c[f.name] = knob_component(f, knob_defaults[f.name], limits)
                # The page cannot train or load a reward model yet (the CLI can): until it can, the
                # reward source stays "rule" and out of sight, rather than offer a choice that fails.
                c["reward_source"].visible = False
        c["probe_result"] = gr.Markdown(elem_id="probe-result")  # the whole tab's width: a wide table


def knobs_tab(c: Components, limits: Limits, knob_defaults: dict) -> None:
    """2. Presets, the knobs in sections (basic open, the rest folded), and the formulas."""
    with gr.Tab(text("tab_knobs"), id="knobs"):
        with gr.Row():
            gr.Markdown(f"**{text('presets')}**")
            c["preset_seed"] = gr.Button(text("preset_seed"), size="sm", elem_id="preset-seed")
            c["preset_quick"] = gr.Button(text("preset_quick"), size="sm", elem_id="preset-quick")
        gr.Markdown(text("highlight_note"), elem_classes=["hint"])
        for section, members in knob_sections(knob_fields()):
            with gr.Accordion(text(f"section_{section}"), open=section == "basic",
                              elem_id=f"knobs-{section}") as c[f"section_{section}"]:
                for first in range(0, len(members), KNOBS_PER_ROW):
                    with gr.Row(equal_height=False):
                        for f in members[first:first + KNOBS_PER_ROW]:
                            with gr.Column(min_width=220):
                                c[f.name] = knob_component(f, knob_defaults[f.name], limits)
        with gr.Accordion(text("formulas"), open=False, elem_id="formulas"):
            gr.Markdown(text("formulas_md"), latex_delimiters=[
                {"left": "$$", "right": "$$", "display": True},
                {"left": "$", "right": "$", "display": False}])


def _chart(c: Components, name: str, label_key: str) -> None:
    # The chart draws its own title (plots.train_chart_spec), laid out above the plot area: the
    # block's label would float over the top of the data (a line at 100 % disappeared under it).
    c[f"plot_{name}"] = gr.Plot(label=text(label_key), elem_id=f"{name}-plot", show_label=False)


def train_tab(c: Components) -> None:
    """3. The curves, the rollouts table and one rollout's token heatmap."""
    with gr.Tab(text("tab_train"), id="train") as tab:
        c["tab_train"] = tab
        # gr.Plot with Vega-Lite specs (see plots.line_chart): markers, whole-number steps, legends below.
        with gr.Row():
            _chart(c, "reward", "plot_reward")
            _chart(c, "success", "plot_success")
            _chart(c, "kl", "plot_kl")
        with gr.Row():
            _chart(c, "policy", "plot_policy")
            _chart(c, "critic", "plot_critic")
            _chart(c, "health", "plot_health")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                c["rollouts_table"] = gr.Dataframe(
                    pd.DataFrame(columns=ROLLOUT_HEADERS), label=text("rollouts"), interactive=False, wrap=True,
                    elem_id="rollouts-table", max_height=420,
                    column_widths=["6%", "8%", "44%", "12%", "7%", "12%", "11%"])
            with gr.Column(scale=2):
                with gr.Row():
                    c["heat_index"] = gr.Slider(0, 1, value=0, step=1, label=text("heat_index"), elem_id="heat-index")
                    c["heat_quantity"] = gr.Dropdown(quantity_choices(), value="advantage", label=text("heat_quantity"),
                                                     elem_id="heat-quantity")
                c["heat_numbers"] = gr.Checkbox(False, label=text("heat_numbers"), elem_id="heat-numbers")
                c["heatmap"] = gr.HTML(heatmap_html(None), label=text("heatmap"), elem_id="token-heatmap")


def runs_tab(c: Components) -> None:
    """4. Every kept run: a table, the runs overlaid on one metric, the CSV, delete, the KL demo."""
    with gr.Tab(text("tab_runs"), id="runs"):
        gr.Markdown(text("runs_note"))
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                c["runs_plot"] = gr.Plot(label=text("runs_plot"), elem_id="runs-plot", show_label=False)
            with gr.Column(scale=1, min_width=260):
                # A value from the start: an API client that leaves it out gets the reward, not an error.
                c["runs_metric"] = gr.Dropdown(RunBook().metric_options(), value="reward_mean",
                                               label=text("runs_metric"), elem_id="runs-metric")
                c["runs_show"] = gr.CheckboxGroup([], label=text("runs_show"), elem_id="runs-show")
                c["kl_demo"] = gr.Button(text("kl_demo"), elem_id="kl-demo", variant="primary")
        c["runs_table"] = gr.Dataframe(RunBook().summary(),
                                       label=text("runs_table"), interactive=False, wrap=True, elem_id="runs-table",
                                       column_widths=["28%", "26%", "7%", "11%", "10%", "10%", "8%"])
        with gr.Row():
            c["runs_pick"] = gr.Dropdown([], label=text("runs_pick"), elem_id="runs-pick", scale=2)
            c["runs_title"] = gr.Textbox("", label=text("runs_title"), elem_id="runs-title", max_lines=1, scale=2)
            c["runs_rename"] = gr.Button(text("runs_rename"), elem_id="runs-rename", scale=1)
            c["runs_delete"] = gr.Button(text("runs_delete"), variant="stop", elem_id="runs-delete", scale=1)
            c["runs_download"] = gr.DownloadButton(text("runs_download"), elem_id="runs-download", interactive=False,
                                                   scale=1)



def compare_tab(c: Components, limits: Limits, start_tasks: list) -> None:
    """4. Base vs adapted answer to one prompt, and the evaluation over every task."""
    with gr.Tab(text("tab_compare"), id="compare"):
        with gr.Row():
            c["compare_task"] = gr.Dropdown([t[0] for t in start_tasks], value=start_tasks[0][0],
                                            label=text("compare_task"), elem_id="compare-task", scale=2)
            c["prompt"] = gr.Textbox(start_tasks[0][0], label=text("compare_prompt"), elem_id="compare-prompt",
                                     scale=3)
            c["compare_btn"] = gr.Button(text("compare_btn"), variant="primary", elem_id="compare-btn", scale=1)
        with gr.Row():
            # 0 = the current run, a value from the start: an API client may leave the argument out.
            c["compare_run"] = gr.Dropdown([(t("choice.current_run"), 0)], value=0, label=text("compare_run"),
                                           info=text("compare_run_info"), elem_id="compare-run", scale=2)
            gr.Markdown(text("compare_note"))
        with gr.Row():
            c["base_output"] = gr.Textbox(label=text("base_output"), elem_id="base-output", lines=4,
                                          interactive=False)
            c["adapted_output"] = gr.Textbox(label=text("adapted_output"), elem_id="adapted-output", lines=4,
                                             interactive=False)
        with gr.Row():
            c["samples_per_task"] = gr.Slider(1, limits.max_eval_samples, value=min(4, limits.max_eval_samples),
                                              step=1, label=text("eval_samples"), elem_id="eval-samples", scale=2)
            c["eval_btn"] = gr.Button(text("eval_btn"), elem_id="eval-btn", scale=1)
        c["eval_table"] = gr.Dataframe(pd.DataFrame(columns=handlers.eval_headers()), label=text("eval_table"),
                                       interactive=False, wrap=True, elem_id="eval-table")


def files_tab(c: Components) -> None:
    """5. Download the adapter (PEFT format) and the metrics; export the run for TRL, veRL and
    OpenRLHF; load an adapter back (either format)."""
    with gr.Tab(text("tab_files"), id="files"):
        gr.Markdown(text("files_note"))
        with gr.Row():
            c["download_adapter"] = gr.DownloadButton(text("download_adapter"), elem_id="download-adapter",
                                                      interactive=False)
            c["download_metrics"] = gr.DownloadButton(text("download_metrics"), elem_id="download-metrics",
                                                      interactive=False)
        gr.Markdown(text("export_note"))
        with gr.Row():
            c["export_run"] = gr.Button(text("export_run"), elem_id="export-run", scale=1)
            c["export_file"] = gr.File(label=text("export_file"), interactive=False, elem_id="export-file", scale=3)
        with gr.Row():
            c["files"] = gr.File(label=text("upload_adapter"), file_count="multiple",
                                 file_types=[".zip", ".safetensors", ".json"], elem_id="upload-adapter", scale=3)
            c["load_adapter"] = gr.Button(text("load_adapter"), elem_id="load-adapter", scale=1)
