"""A second comparator on the model's own eyes: query vs template in Qwen2.5-VL's vision features.

Why: at 448x448 Qwen2.5-VL's vision tower turns each image into exactly 16x16 merged visual tokens,
one per judo.grid cell, and those tokens are what the language model reasons over. The cosine
distance between the query's and the template's token at each cell says where the *model* sees the
two pictures differ: a prior at no extra weights and one vision forward pass (both images in one
batch). No registration is applied: a token covers 28x28 pixels, far more than the few pixels two
template photos are usually offset by.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from judo.grid import GRID_SIZE
from judo.images import ImageSource, load_image, to_model_size

#: The model's input side (448 px -> 32x32 patches of 14 px -> 16x16 merged tokens).
MODEL_IMAGE_SIZE = 448


def _image_features(model: Any) -> Any:
    peft_inner = getattr(getattr(model, "base_model", None), "model", None)  # a PEFT-wrapped model
    for owner in (model, getattr(model, "model", None), peft_inner):
        if owner is not None and hasattr(owner, "get_image_features"):
            return owner.get_image_features
    raise TypeError(
        f"{type(model).__name__} has no get_image_features(); vision-token scores need a Qwen2.5-VL "
        "(Qwen2_5_VLForConditionalGeneration) model"
    )


def _to_grid(values: np.ndarray, grid: int = GRID_SIZE) -> np.ndarray:
    """Any (h, w) token grid onto the 16x16 cell grid (area average / bilinear)."""
    if values.shape == (grid, grid):
        return values.astype(np.float64)
    import cv2

    interpolation = cv2.INTER_AREA if values.shape[0] > grid else cv2.INTER_LINEAR
    return cv2.resize(values.astype(np.float32), (grid, grid), interpolation=interpolation).astype(np.float64)


def vision_token_scores(model: Any, processor: Any, query: ImageSource, template: ImageSource) -> np.ndarray:
    """(16, 16) cosine distance (0 = same, up to 2) between the query's and the template's merged
    visual tokens, row-major like judo.grid. Both images are resized to 448x448 first, as in every
    prompt the model sees."""
    import torch

    images = [to_model_size(load_image(x), MODEL_IMAGE_SIZE) for x in (template, query)]
    image_processor = getattr(processor, "image_processor", processor)
    inputs = image_processor(images=images, return_tensors="pt")
    device = next(model.parameters()).device
    pixel_values = inputs["pixel_values"].to(device)
    grid_thw = inputs["image_grid_thw"].to(device)
    with torch.inference_mode():
        out = _image_features(model)(pixel_values=pixel_values, image_grid_thw=grid_thw)
    per_image = getattr(out, "pooler_output", out)
    if isinstance(per_image, torch.Tensor):  # older layout: one concatenated tensor
        per_image = torch.split(per_image, per_image.shape[0] // 2)
    t_tokens, q_tokens = (x.float() for x in per_image)
    distance = 1.0 - torch.nn.functional.cosine_similarity(q_tokens, t_tokens, dim=-1)
    _, h, w = (int(v) for v in grid_thw[1].tolist())  # patches per side of the query
    merge = round((h * w / q_tokens.shape[0]) ** 0.5)  # 2 for Qwen2.5-VL: 2x2 patches per token
    tokens = distance.cpu().numpy().reshape(h // merge, w // merge)
    return _to_grid(tokens)
