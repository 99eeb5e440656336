"""The tiny model with its EOS logit raised, so the responses of one batch end at different
lengths: padding after EOS then matters, and code that ignores the mask gives other numbers.
Import it into a test module: ``from varied_lengths import tiny_with_varied_lengths``."""

import torch

from ppo_demo.models import load_model
from tolerances import float64_everywhere


def tiny_with_varied_lengths(boost: float = 4.0, float64: bool = False):
    """``float64``: computed in float64 end to end, for tests of exact equality (see tolerances)."""
    torch.manual_seed(0)
    loaded = load_model("tiny-random", device="cpu", dtype=torch.float64 if float64 else None)
    if float64:
        float64_everywhere(loaded.model)
    eos = loaded.tokenizer.eos_token_id

    def favour_eos(module, args, logits):
        logits = logits.clone()
        logits[..., eos] += boost
        return logits

    loaded.model.get_output_embeddings().register_forward_hook(favour_eos)
    return loaded
