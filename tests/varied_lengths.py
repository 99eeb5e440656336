"""The tiny model with its EOS logit raised, so the responses of one batch end at different
lengths: padding after EOS then matters, and code that ignores the mask gives other numbers.
Import it into a test module: ``from varied_lengths import tiny_with_varied_lengths``."""

import torch

from ppo_demo.models import load_model


def tiny_with_varied_lengths(boost: float = 4.0):
    torch.manual_seed(0)
    loaded = load_model("tiny-random", device="cpu")
    eos = loaded.tokenizer.eos_token_id

    def favour_eos(module, args, logits):
        logits = logits.clone()
        logits[..., eos] += boost
        return logits

    loaded.model.get_output_embeddings().register_forward_hook(favour_eos)
    return loaded
