"""The Gradio app of PPO-LoRA Lab. The engine (``ppo_demo``) never imports this package.

Modules, one job each:

* ``limits``   deployment limits read from environment variables
* ``session``  per-browser-session state and the shared model registry (and its loading state)
* ``runs``     a session's runs side by side: names, table, combined CSV, overlays, KL demo
* ``model_gate`` whose turn it is on the shared model (the one place a job waits for it)
* ``run_jobs`` a training run's life in its own thread: one turn at the model per step,
               streams each step to the screen; Stop and a closed tab end it at once
* ``model_work`` the model's work (a training step, Compare, Evaluate, an adapter's trial
               load) as pure functions of picklable values: what ZeroGPU runs on the GPU
* ``errors``   the one way an engine error becomes a message in the browser
* ``handlers`` the event functions, one file per feature: plain values in, plain values out
               (tested directly)
* ``plots``    metrics history -> Vega-Lite charts for ``gr.Plot``; rollouts table
* ``heatmap``  one rollout's tokens coloured by advantage, KL or ratio (HTML)
* ``i18n``     English and Simplified Chinese: page labels (gr.I18n) and what the server writes
               (``t(key, lang)``, the language from the request's Accept-Language)
* ``tabs``     one builder per part of the page, filing components by name (``Components``)
* ``updates``  handler results as component updates (dicts keyed by component), event helpers
* ``wiring``   one ``wire_*`` per feature: which handler each event calls, its inputs and outputs
* ``layout``   ``build_demo()``: calls the builders and the wiring, nothing else
"""
