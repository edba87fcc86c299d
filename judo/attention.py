"""Prefill attention for left-padded batches on CPU: each row on its own unpadded span, no mask.

A left-padded batch makes transformers hand SDPA a dense boolean (batch, 1, L, L) mask for the prompt
pass, and PyTorch's CPU kernel is several times slower with such a mask than with ``is_causal`` on an
unmasked sequence (measured on the tiny model: ~180 ms vs ~8 ms x 8 rows per layer for 8 prompts of
~1000 tokens). Batched evaluation on CPU therefore spent most of its prompt pass in the mask.

`left_padded_sdpa` is registered with transformers' `AttentionInterface` under `IMPLEMENTATION`, with a
mask function that builds the usual SDPA mask and, when that mask is exactly "causal + left padding"
over an empty cache, tags it with each row's pad count. The attention function then runs each row's
real tokens with ``is_causal=True`` (the very computation a single-prompt call does, so batched rows
match single calls bit for bit in the prompt pass) and leaves the pad rows at zero; pad positions are
masked as keys everywhere, so nothing reads them. Any other call (decode steps, untagged or custom
masks, the vision tower, GPUs) goes to transformers' SDPA unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

IMPLEMENTATION = "judo_left_padded_sdpa"
_TAG = "judo_left_pads"  # attribute set on a mask tensor: list of pad counts per row


def _left_pads(attention_mask) -> list[int] | None:
    """Pad count per row when the 2D mask is padding-on-the-left only (zeros then ones), else None."""
    import torch

    if attention_mask is None or attention_mask.dim() != 2:
        return None
    mask = attention_mask.bool()
    real = mask.sum(-1)
    pads = mask.shape[-1] - real
    # left padding: every row is all zeros up to its pad count and all ones after it
    positions = torch.arange(mask.shape[-1], device=mask.device)
    if not torch.equal(mask, positions[None, :] >= pads[:, None]):
        return None
    return pads.tolist()


def left_padded_mask(
    batch_size: int,
    q_length: int,
    kv_length: int,
    q_offset: int = 0,
    kv_offset: int = 0,
    mask_function: Any = None,
    attention_mask: Any = None,
    **kwargs: Any,
):
    """transformers' SDPA mask, tagged with the pad counts when it is causal + left padding, no cache."""
    from transformers.masking_utils import causal_mask_function, sdpa_mask

    mask = sdpa_mask(
        batch_size=batch_size,
        q_length=q_length,
        kv_length=kv_length,
        q_offset=q_offset,
        kv_offset=kv_offset,
        mask_function=mask_function,
        attention_mask=attention_mask,
        **kwargs,
    )
    plain_prefill = (
        mask is not None
        and mask_function is causal_mask_function
        and isinstance(q_offset, int)
        and isinstance(kv_offset, int)
        and q_offset == 0
        and kv_offset == 0
        and q_length == kv_length > 1
    )
    if plain_prefill:
        pads = _left_pads(attention_mask)
        if pads is not None and len(pads) == batch_size:
            setattr(mask, _TAG, pads)
    return mask


def left_padded_sdpa(module, query, key, value, attention_mask, **kwargs: Any):
    """Per-row causal SDPA for a tagged prompt-pass mask on CPU; transformers' SDPA otherwise."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    pads = getattr(attention_mask, _TAG, None)
    if (
        pads is None
        or query.device.type != "cpu"
        or query.shape[2] != key.shape[2]
        or kwargs.get("position_bias") is not None
    ):
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    batch, heads, length, _ = query.shape
    out = query.new_zeros(batch, length, heads, value.shape[-1])
    for row, pad in enumerate(pads):
        if pad < length:
            span = slice(pad, None)
            part, _ = sdpa_attention_forward(
                module,
                query[row : row + 1, :, span],
                key[row : row + 1, :, span],
                value[row : row + 1, :, span],
                None,
                **kwargs,
            )
            out[row, span] = part[0]
    return out, None


def register() -> str:
    """Register the attention and mask functions with transformers (idempotent); return the name."""
    from transformers import AttentionInterface, AttentionMaskInterface

    AttentionInterface.register(IMPLEMENTATION, left_padded_sdpa)
    AttentionMaskInterface.register(IMPLEMENTATION, left_padded_mask)
    return IMPLEMENTATION


@contextlib.contextmanager
def left_padded_prefill(model) -> Iterator[None]:
    """Within the block, a CPU model using SDPA runs its language model with `left_padded_sdpa`.

    Only the text part switches (the vision tower never sees padding). Models on other devices or with
    another attention implementation are left alone. The previous setting is restored on exit.
    """
    text_config = getattr(model.config, "text_config", None)
    if (
        text_config is None
        or model.device.type != "cpu"
        or getattr(text_config, "_attn_implementation", None) != "sdpa"
    ):
        yield
        return
    model.set_attn_implementation({"text_config": register()})
    try:
        yield
    finally:
        model.set_attn_implementation({"text_config": "sdpa"})
