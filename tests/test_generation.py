"""Generation on the tiny Qwen2.5-VL: 16x16 vision tokens per image, streaming == batch, stop, errors."""

from __future__ import annotations

import threading

import pytest
import torch

from judo.generation import (
    MAX_NEW_TOKENS,
    GenerationError,
    StreamStats,
    capped,
    decoding,
    encode,
    generate_batch,
    stream_generate,
)
from judo.grid import GRID_SIZE
from judo.models import load_model, load_processor
from judo.prompts import inspection_prompt
from tests.noise import noise

TOKENS = 24  # short completions keep the suite fast on 2 cores


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(tiny_model_dir, device="cpu"), load_processor(tiny_model_dir)


@pytest.fixture(scope="module")
def prompts():
    return [
        inspection_prompt(
            noise(1), noise(0), "Is there any defect in the object?", {"A": "Yes.", "B": "No."}
        ),
        inspection_prompt(
            noise(2, (500, 300)),
            noise(0),
            "Where is the defect?",
            {"A": "Top left.", "B": "Bottom right.", "C": "Center.", "D": "Top right."},
            style="mmad",
        ),
        inspection_prompt(
            noise(3),
            [noise(4), noise(5)],
            "What kind of defect is it?",
            {"A": "Scratch.", "B": "Hole.", "C": "Stain."},
            knowledge="Hole: a round gap.",
        ),
    ]


def test_two_448_images_give_256_tokens_each(tiny, prompts):
    model, processor = tiny
    inputs = encode(processor, prompts[0])
    assert inputs["image_grid_thw"].tolist() == [[1, 32, 32], [1, 32, 32]]  # 32x32 patches of 14 px
    ids = inputs["input_ids"][0].tolist()
    start, end = model.config.vision_start_token_id, model.config.vision_end_token_id
    spans = [(i, ids.index(end, i)) for i, t in enumerate(ids) if t == start]
    counts = [sum(t == model.config.image_token_id for t in ids[a:b]) for a, b in spans]
    assert counts == [GRID_SIZE * GRID_SIZE] * 2  # 2x2-merged: one token per seg cell


def test_stream_joins_to_the_batched_greedy_output(tiny, prompts):
    model, processor = tiny
    stats = StreamStats()
    deltas = list(stream_generate(model, processor, prompts[0], decoding(TOKENS), stats=stats))
    assert len(deltas) >= 1 and all(isinstance(d, str) and d for d in deltas)
    (expected,) = generate_batch(model, processor, [prompts[0]], decoding(TOKENS))
    assert expected.strip()
    assert "".join(deltas) == expected
    inputs = encode(processor, prompts[0])
    ids = model.generate(**inputs, max_new_tokens=TOKENS, do_sample=False)
    assert stats.tokens == ids.shape[1] - inputs["input_ids"].shape[1]  # the exact count, not a re-tokenising


def test_batch_equals_single_calls(tiny, prompts):
    model, processor = tiny
    batch = generate_batch(model, processor, prompts, decoding(TOKENS))
    singles = [generate_batch(model, processor, [p], decoding(TOKENS))[0] for p in prompts]
    assert batch == singles
    assert len(set(batch)) > 1  # different inputs, different outputs: padding did not leak across rows


def test_stop_event_stops_early(tiny, prompts):
    model, processor = tiny
    (full,) = generate_batch(model, processor, [prompts[0]], decoding(64))
    stop = threading.Event()
    received = []
    for delta in stream_generate(model, processor, prompts[0], decoding(64), stop_event=stop):
        received.append(delta)
        stop.set()
    text = "".join(received)
    assert full.startswith(text) and len(text) < len(full)


def test_closing_the_stream_ends_the_worker(tiny, prompts):
    model, processor = tiny
    stream = stream_generate(model, processor, prompts[0], decoding(MAX_NEW_TOKENS))
    next(stream)
    stream.close()
    assert not [t for t in threading.enumerate() if t.name == "judo-generate"]


def test_worker_errors_reach_the_consumer(tiny_model_dir, prompts):
    # A real failure inside generate(): beam search cannot stream.
    model, processor = load_model(tiny_model_dir, device="cpu"), load_processor(tiny_model_dir)
    model.generation_config.num_beams = 2
    with pytest.raises(ValueError, match="(?i)beam"):
        list(stream_generate(model, processor, prompts[0], decoding(4)))
    assert not [t for t in threading.enumerate() if t.name == "judo-generate"]


def test_sampling_follows_the_torch_seed(tiny, prompts):
    model, processor = tiny
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        outs.append(
            generate_batch(
                model, processor, [prompts[1]], decoding(8, do_sample=True, temperature=0.9, top_p=0.95)
            )
        )
    assert outs[0] == outs[1]


def test_empty_batch(tiny):
    assert generate_batch(*tiny, []) == []


@pytest.mark.parametrize(
    "settings",
    [
        {"max_new_tokens": 0},
        {"max_new_tokens": MAX_NEW_TOKENS + 1},
        {"max_new_tokens": 1.5},
        {"do_sample": True, "temperature": 0.0},
        {"do_sample": True, "top_p": 1.5},
    ],
)
def test_bad_settings(settings):
    with pytest.raises(GenerationError):
        decoding(**settings)


def test_greedy_drops_sampling_fields_and_the_cap_lowers_the_budget():
    greedy = decoding(32, temperature=0.7, top_p=0.9)
    assert (greedy.do_sample, greedy.temperature, greedy.top_p) == (False, None, None)
    assert capped(greedy, 8).max_new_tokens == 8 and capped(greedy, 64) is greedy
    sampled = capped(decoding(32, do_sample=True, temperature=0.7), 8)
    assert (sampled.max_new_tokens, sampled.do_sample, sampled.temperature) == (8, True, 0.7)


def test_settings_that_are_not_a_generation_config_and_non_prompt(tiny, prompts):
    model, processor = tiny
    with pytest.raises(GenerationError, match="GenerationConfig"):
        generate_batch(model, processor, prompts[:1], {"num_beams": 4})
    with pytest.raises(GenerationError, match="judo.prompts.Prompt"):
        generate_batch(model, processor, ["Is it defective?"])
