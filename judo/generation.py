"""Running a loaded Qwen2.5-VL on `judo.prompts.Prompt`s: streamed for the app, batched for evaluation.

Both paths give the model the same inputs (`encode` for one prompt; `encode_shared` for a batch, which
tests compare with the processor's own batch encoding, `encode_batch`) and decode with special tokens
skipped, so a streamed answer joins to exactly the text a batched greedy call returns, and the tags
``<seg>``, ``<think>``, ``<answer>`` (ordinary text, never special tokens) always survive decoding.

Batches share images: MMAD asks several questions about one query image with the same template, so a
batch of consecutive questions holds each picture several times. `generate_batch` preprocesses and
encodes (vision tower) every distinct picture once and hands the features to ``generate`` as
``mm_encoder_outputs``; the token sequence and the features each row sees are the ones the processor
and the model would have produced for the full list, so greedy output is unchanged. On CPU the
prompt pass of a left-padded batch runs row by row without a mask (`judo.attention`), which is what
makes batching pay off there.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from judo.attention import left_padded_prefill
from judo.prompts import Prompt

MAX_NEW_TOKENS = 4096  # hard cap: a runaway request must not hold the GPU for minutes
_SAMPLING_KEYS = {"do_sample", "temperature", "top_p", "top_k", "repetition_penalty"}


class GenerationError(ValueError):
    """Bad generation settings (token budget, temperature, ...) or prompts."""


class PromptTooLong(GenerationError):
    """The encoded prompt is longer than the engine accepts; the message says so and what to shorten."""


def _check_prompt(prompt: Any) -> Prompt:
    if not isinstance(prompt, Prompt):
        raise GenerationError(f"expected a judo.prompts.Prompt, got {type(prompt).__name__}")
    return prompt


def _chat_text(processor, prompt: Prompt) -> str:
    return processor.apply_chat_template(prompt.messages, add_generation_prompt=True, tokenize=False)


def encode(processor, prompt: Prompt):
    """Chat template (with the assistant turn opened) + tokenizer + image processor -> model inputs."""
    _check_prompt(prompt)
    images = list(prompt.images) or None
    return processor(text=[_chat_text(processor, prompt)], images=images, return_tensors="pt")


def encode_batch(processor, prompts: Sequence[Prompt]):
    """Several prompts in one batch, padded on the left so every row's generation starts at the end.

    The processor's own encoding of every image; `generate_batch` uses `encode_shared`, which gives the
    same inputs with each distinct picture processed once.
    """
    texts, images = [], []
    for prompt in prompts:
        _check_prompt(prompt)
        texts.append(_chat_text(processor, prompt))
        images.extend(prompt.images)
    return processor(
        text=texts, images=images or None, padding=True, padding_side="left", return_tensors="pt"
    )


@dataclass
class SharedImageBatch:
    """A batch encoded with each distinct picture processed once.

    ``text`` holds what the processor returns for the batch minus ``pixel_values`` (input_ids,
    attention_mask, mm_token_type_ids and ``image_grid_thw`` for every image placeholder, in order);
    ``pixel_values``/``grid_thw`` cover the distinct pictures only, and ``image_index[k]`` says which
    distinct picture fills the k-th placeholder.
    """

    text: Any
    pixel_values: Any
    grid_thw: Any
    image_index: list[int]


def _image_key(image) -> tuple:
    """Content key of a PIL image: equal keys mean equal pixels, hence equal pixel_values and features."""
    return (image.mode, image.size, image.tobytes())


def encode_shared(processor, prompts: Sequence[Prompt]) -> SharedImageBatch:
    """`encode_batch` with every distinct picture preprocessed once (see `SharedImageBatch`).

    The image processor runs on the distinct pictures; each ``<|image_pad|>`` of the chat text is then
    expanded to that picture's token count and the texts are tokenized together (left padding), which
    is what the processor does for the full image list (tests compare both).
    """
    import torch
    from transformers import BatchFeature

    texts, keys, index, distinct = [], {}, [], []
    for prompt in prompts:
        _check_prompt(prompt)
        texts.append(_chat_text(processor, prompt))
        for image in prompt.images:
            key = _image_key(image)
            if key not in keys:
                keys[key] = len(distinct)
                distinct.append(image)
            index.append(keys[key])
    pad = processor.image_token
    found = sum(text.count(pad) for text in texts)
    if found != len(index):
        raise GenerationError(
            f"the prompts hold {found} image placeholder(s) for {len(index)} image(s); "
            f"is {pad!r} written in a question?"
        )
    pixel_values = grid = None
    if distinct:
        pixels = processor.image_processor(images=distinct, return_tensors="pt")
        pixel_values, grid = pixels["pixel_values"], pixels["image_grid_thw"]
        tokens = (grid.prod(-1) // processor.image_processor.merge_size**2).tolist()
        placeholders = iter(pad * tokens[i] for i in index)
        texts = ["".join(_interleave(text.split(pad), placeholders)) for text in texts]
    # Lists, then tensors here: the tokenizer's own tensor conversion walks every id in Python first and
    # took longer than the tokenization itself for ~1000-token rows.
    encoded = dict(processor.tokenizer(texts, padding=True, padding_side="left"))
    encoded["mm_token_type_ids"] = processor.create_mm_token_type_ids(encoded["input_ids"])
    text = BatchFeature({key: torch.tensor(value) for key, value in encoded.items()})
    if distinct:
        text["image_grid_thw"] = grid[index]
    return SharedImageBatch(text, pixel_values, grid, index)


def _interleave(parts: list[str], fillers: Iterator[str]) -> Iterator[str]:
    """parts[0], filler, parts[1], filler, ..., parts[-1]."""
    yield parts[0]
    for part in parts[1:]:
        yield next(fillers)
        yield part


def generation_kwargs(
    processor,
    *,
    max_new_tokens: int = 512,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int | None = None,
    repetition_penalty: float | None = None,
) -> dict[str, Any]:
    """Validated ``generate()`` keyword arguments: greedy unless ``do_sample``; budget within 1..MAX_NEW_TOKENS."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise GenerationError(f"max_new_tokens must be an integer, got {max_new_tokens!r}")
    if not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise GenerationError(f"max_new_tokens must be between 1 and {MAX_NEW_TOKENS}, got {max_new_tokens}")
    tokenizer = processor.tokenizer
    kwargs: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "do_sample": bool(do_sample),
        "pad_token_id": tokenizer.pad_token_id
        if tokenizer.pad_token_id is not None
        else tokenizer.eos_token_id,
    }
    if repetition_penalty is not None:
        if not repetition_penalty > 0:
            raise GenerationError(f"repetition_penalty must be > 0, got {repetition_penalty}")
        kwargs["repetition_penalty"] = float(repetition_penalty)
    if not do_sample:
        # Greedy: make it greedy even when the checkpoint's generation_config asks for sampling.
        kwargs.update(temperature=None, top_p=None, top_k=None)
        return kwargs
    if not temperature > 0:
        raise GenerationError(f"temperature must be > 0 when sampling, got {temperature}")
    if not 0 < top_p <= 1:
        raise GenerationError(f"top_p must be in (0, 1], got {top_p}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 0):
        raise GenerationError(f"top_k must be a non-negative integer, got {top_k!r}")
    kwargs.update(temperature=float(temperature), top_p=float(top_p), top_k=top_k)
    return kwargs


def _stop_criteria(*events: threading.Event):
    """A StoppingCriteria that ends generation at the next token once any event is set."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _EventStop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            stop = any(event.is_set() for event in events)
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_EventStop()])


def stream_generate(
    model,
    processor,
    prompt: Prompt,
    *,
    max_new_tokens: int = 512,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    stop_event: threading.Event | None = None,
    max_prompt_tokens: int | None = None,
) -> Iterator[str]:
    """Yield the completion as text deltas while ``model.generate`` runs in a worker thread.

    ``max_prompt_tokens``: a longer encoded prompt (text and image tokens) raises `PromptTooLong`
    before the model runs, so one oversized request cannot hold the accelerator in prefill.

    Setting ``stop_event`` (or closing the iterator) stops generation at the next token. An exception
    in the worker (out of memory, a broken checkpoint...) is re-raised here, in the consumer.
    """
    from transformers import TextIteratorStreamer

    kwargs = generation_kwargs(
        processor, max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature, top_p=top_p
    )
    inputs = encode(processor, prompt)
    length = int(inputs["input_ids"].shape[-1])
    if max_prompt_tokens is not None and length > max_prompt_tokens:
        raise PromptTooLong(
            f"The prompt is {length} tokens long, more than this engine's limit of {max_prompt_tokens}: "
            "shorten the question or the options."
        )
    inputs = inputs.to(model.device)
    streamer = TextIteratorStreamer(processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
    closed = threading.Event()  # set when the consumer goes away, so the worker does not run on
    events = (closed,) if stop_event is None else (closed, stop_event)
    failure: list[BaseException] = []

    def work() -> None:
        try:
            model.generate(**inputs, **kwargs, streamer=streamer, stopping_criteria=_stop_criteria(*events))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread below
            failure.append(exc)
            streamer.end()  # unblock the consumer; generate() did not get to do it

    worker = threading.Thread(target=work, name="judo-generate", daemon=True)
    worker.start()
    try:
        for delta in streamer:
            if delta:
                yield delta
    finally:
        closed.set()
        worker.join()
    if failure:
        raise failure[0]


def generate_batch(
    model,
    processor,
    prompts: Sequence[Prompt],
    *,
    max_new_tokens: int = 512,
    **sampling: Any,
) -> list[str]:
    """Generate for several prompts in one batch (left padding); return the decoded completions only.

    ``sampling`` takes do_sample, temperature, top_p, top_k, repetition_penalty.
    """
    unknown = set(sampling) - _SAMPLING_KEYS
    if unknown:
        raise GenerationError(f"unknown generation option(s) {sorted(unknown)}; use {sorted(_SAMPLING_KEYS)}")
    prompts = list(prompts)
    if not prompts:
        return []
    import torch

    kwargs = generation_kwargs(processor, max_new_tokens=max_new_tokens, **sampling)
    batch = encode_shared(processor, prompts)
    inputs = batch.text.to(model.device)
    padded = len(prompts) > 1 and bool((inputs["attention_mask"] == 0).any())
    with torch.inference_mode(), left_padded_prefill(model) if padded else contextlib.nullcontext():
        if batch.pixel_values is not None:
            kwargs["mm_encoder_outputs"] = {"image": _image_features(model, batch)}
        output = model.generate(**inputs, **kwargs)
    completions = output[:, inputs["input_ids"].shape[1] :]
    return processor.tokenizer.batch_decode(completions, skip_special_tokens=True)


def _image_features(model, batch: SharedImageBatch):
    """Vision-tower features of the distinct pictures, repeated per placeholder as ``generate`` wants."""
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    features = model.get_image_features(
        pixel_values=batch.pixel_values.to(model.device),
        image_grid_thw=batch.grid_thw.to(model.device),
        return_dict=True,
    ).pooler_output
    return BaseModelOutputWithPooling(pooler_output=tuple(features[i] for i in batch.image_index))
