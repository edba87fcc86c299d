"""Batched generation: shared pictures encoded once, row-by-row prompt pass for left padding, eval image cache."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from judo import attention
from judo.generation import GenerationError, encode_batch, encode_shared, generate_batch
from judo.models import load_model, load_processor
from judo.prompts import inspection_prompt
from tests.noise import noise

TOKENS = 12


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(tiny_model_dir, device="cpu"), load_processor(tiny_model_dir)


@pytest.fixture(scope="module")
def prompts():
    """Three questions on one query (separate but equal image objects), one on another; one template."""
    options = {"A": "Yes.", "B": "No."}
    return [
        inspection_prompt(noise(1), noise(0), "Is there any defect in the object?", options),
        inspection_prompt(noise(1), noise(0), "Is the object normal?", options, style="mmad"),
        inspection_prompt(
            noise(1), noise(0), "Where is the defect?", {"A": "Top.", "B": "Bottom.", "C": "Nowhere."}
        ),
        inspection_prompt(noise(2), noise(0), "Any defect?", options, knowledge="Hole: a round gap."),
    ]


def expanded_pixels(batch) -> torch.Tensor:
    """The distinct pictures' pixel rows laid out per placeholder, as the processor returns them."""
    sizes = batch.grid_thw.prod(-1).tolist()
    starts = np.cumsum([0, *sizes])
    return torch.cat([batch.pixel_values[starts[i] : starts[i + 1]] for i in batch.image_index])


def test_shared_encoding_equals_the_processor_output(tiny, prompts):
    _, processor = tiny
    full = encode_batch(processor, prompts)
    shared = encode_shared(processor, prompts)
    assert len(shared.grid_thw) == 3 and len(shared.image_index) == 8  # 2 queries + 1 template, 8 slots
    assert set(full) == set(shared.text) | {"pixel_values"}
    for key in shared.text:
        assert shared.text[key].dtype == full[key].dtype, key
        assert torch.equal(shared.text[key], full[key]), key
    assert torch.equal(expanded_pixels(shared), full["pixel_values"])


def test_batch_with_shared_pictures_equals_single_calls(tiny, prompts):
    model, processor = tiny
    batch = generate_batch(model, processor, prompts, max_new_tokens=TOKENS)
    assert batch == [generate_batch(model, processor, [p], max_new_tokens=TOKENS)[0] for p in prompts]


def test_image_placeholder_in_the_question_is_refused(tiny):
    model, processor = tiny
    prompt = inspection_prompt(noise(1), noise(0), "What is <|image_pad|>?", {"A": "Yes.", "B": "No."})
    with pytest.raises(GenerationError, match="placeholder"):
        generate_batch(model, processor, [prompt], max_new_tokens=2)


def test_padded_batch_takes_the_row_by_row_prompt_pass(tiny, prompts, monkeypatch):
    """A transformers change that stopped the tagged mask from reaching attention would only be slow,
    never wrong; this notices it."""
    model, processor = tiny
    calls = []
    real = attention.left_padded_sdpa

    def spy(module, query, key, value, mask, **kwargs):
        calls.append((query.shape[2], getattr(mask, attention._TAG, None)))
        return real(module, query, key, value, mask, **kwargs)

    monkeypatch.setattr(attention, "left_padded_sdpa", spy)
    generate_batch(model, processor, prompts, max_new_tokens=3)
    prefill = [pads for length, pads in calls if length > 1]
    layers = model.config.text_config.num_hidden_layers
    assert len(prefill) == layers and all(pads is not None and max(pads) > 0 for pads in prefill)
    assert any(pads == 0 for pads in prefill[0])  # the longest prompt has no padding
    assert model.config.text_config._attn_implementation == "sdpa"  # restored after the call


def _qkv(batch=3, length=40, heads=4, kv_heads=2, dim=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, heads, length, dim, generator=g)
    k = torch.randn(batch, kv_heads, length, dim, generator=g)
    v = torch.randn(batch, kv_heads, length, dim, generator=g)
    module = types.SimpleNamespace(is_causal=True, num_key_value_groups=heads // kv_heads, training=False)
    return module, q, k, v


def _mask(padding_2d: torch.Tensor):
    from transformers.masking_utils import causal_mask_function

    batch, length = padding_2d.shape
    return attention.left_padded_mask(
        batch_size=batch,
        q_length=length,
        kv_length=length,
        mask_function=causal_mask_function,
        attention_mask=padding_2d.bool(),
        allow_is_causal_skip=True,
    )


def test_row_by_row_attention_equals_single_rows_and_the_masked_kernel():
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    module, q, k, v = _qkv()
    pads = [0, 7, 39]
    padding = torch.ones(3, 40, dtype=torch.long)
    for row, pad in enumerate(pads):
        padding[row, :pad] = 0
    mask = _mask(padding)
    assert getattr(mask, attention._TAG) == pads
    rows, _ = attention.left_padded_sdpa(module, q, k, v, mask)
    masked, _ = sdpa_attention_forward(module, q, k, v, mask)
    for row, pad in enumerate(pads):
        single, _ = sdpa_attention_forward(
            module, q[row : row + 1, :, pad:], k[row : row + 1, :, pad:], v[row : row + 1, :, pad:], None
        )
        assert torch.equal(rows[row, pad:], single[0])  # exactly what a one-prompt call computes
        torch.testing.assert_close(rows[row, pad:], masked[row, pad:])
        assert not rows[row, :pad].any()  # pad rows are never read; left at zero


def test_other_masks_fall_back_to_transformers_sdpa():
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    module, q, k, v = _qkv()
    right = torch.ones(3, 40, dtype=torch.long)
    right[1, 30:] = 0  # right padding: not the pattern the row-by-row pass handles
    mask = _mask(right)
    assert not hasattr(mask, attention._TAG)
    out, _ = attention.left_padded_sdpa(module, q, k, v, mask)
    assert torch.equal(out, sdpa_attention_forward(module, q, k, v, mask)[0])
    assert attention._left_pads(torch.tensor([[0, 1, 0, 1]])) is None
    assert attention._left_pads(torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])) == [2, 0]


def test_models_not_on_cpu_sdpa_are_left_alone(tiny):
    model, _ = tiny
    model.set_attn_implementation({"text_config": "eager"})
    try:
        with attention.left_padded_prefill(model):
            assert model.config.text_config._attn_implementation == "eager"
    finally:
        model.set_attn_implementation({"text_config": "sdpa"})
    with attention.left_padded_prefill(model):
        assert model.config.text_config._attn_implementation == attention.IMPLEMENTATION
        assert model.config.vision_config._attn_implementation == "sdpa"
    assert model.config.text_config._attn_implementation == "sdpa"


def test_eval_image_cache_shares_and_bounds(tmp_path):
    from judo.evaluate.run import ImageCache
    from judo.images import ImageInputError

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        noise(i, (64, 64)).save(paths[-1])
    cache = ImageCache(size=2)
    first = cache.load(paths[0])
    assert cache.load(paths[0]) is first  # the next question on the same picture gets the same object
    cache.load(paths[1])
    cache.load(paths[2])  # evicts the least recently used: paths[0]
    assert cache.load(paths[0]) is not first
    assert np.array_equal(np.asarray(cache.load(paths[0])), np.asarray(first))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ImageInputError):
        cache.load(tmp_path / "bad.png")


def test_model_answerer_resizes_each_picture_once_per_batch(tiny_model_dir, monkeypatch):
    import judo.images
    from judo.evaluate.answerers import ModelAnswerer, Prepared

    answerer = ModelAnswerer(str(tiny_model_dir), device="cpu", max_new_tokens=2)
    query, template = noise(1, (256, 256)), noise(0, (320, 256))
    resized = []
    real = judo.images.to_model_size

    def counting(image, size=448):
        if image.size != (size, size):
            resized.append(image.size)
        return real(image, size)

    monkeypatch.setattr(judo.images, "to_model_size", counting)
    item = Prepared(
        query,
        [template],
        "Any defect?",
        {"A": "Yes.", "B": "No."},
        "Anomaly Detection",
        None,
        "bottle",
        "DS-MVTec",
    )
    assert len(answerer.answer([item, item, item])) == 3
    assert sorted(resized) == [(256, 256), (320, 256)]


def test_eval_threads_option(tiny_model_dir, mmad_root, tmp_path, capsys):
    from judo.evaluate.records import iter_file
    from judo.evaluate.run import main

    out = tmp_path / "run.jsonl"
    common = ["--mmad-root", str(mmad_root), "--out", str(out), "--checkpoint", str(tiny_model_dir)]
    assert main([*common, "--threads", "0", "--no-progress"]) == 2
    assert "--threads must be >= 1" in capsys.readouterr().err
    before = torch.get_num_threads()
    try:
        args = ["--threads", "1", "--limit", "3", "--batch-size", "2", "--max-new-tokens", "2"]
        assert main([*common, *args, "--device", "cpu", "--no-progress"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert len(list(iter_file(out))) == 3
