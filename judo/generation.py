"""Running a loaded Qwen2.5-VL on `judo.prompts.Prompt`s: streamed for the app, batched for evaluation.

Both paths give the model the processor's own inputs (`encode` for one prompt, `encode_batch` for a
left-padded batch) and decode with special tokens skipped, so a streamed answer joins to exactly the
text a batched greedy call returns, and the tags ``<seg>``, ``<think>``, ``<answer>`` (ordinary text,
never special tokens) always survive decoding.

Decoding settings are one object, a `transformers.GenerationConfig` made and validated by `decoding`
(greedy and a bounded token budget unless told otherwise); engines cap it with `capped`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from transformers import GenerationConfig

from judo.prompts import Prompt

MAX_NEW_TOKENS = 4096  # hard cap: a runaway request must not hold the GPU for minutes
DEFAULT_MAX_NEW_TOKENS = 768  # an engine's budget when its configuration names none
#: The fields a request may set; everything else comes from the checkpoint's own generation_config.
DECODING_FIELDS = ("max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "repetition_penalty")


_GREEDY_UNSET = ("temperature", "top_p", "top_k")  # None overrides a checkpoint's sampling defaults


class GenerationError(ValueError):
    """Bad generation settings (token budget, temperature, ...) or prompts."""


class PromptTooLong(GenerationError):
    """The encoded prompt is longer than the engine accepts; the message says so and what to shorten."""


def _check_prompt(prompt: Any) -> Prompt:
    if not isinstance(prompt, Prompt):
        raise GenerationError(f"expected a judo.prompts.Prompt, got {type(prompt).__name__}")
    return prompt


def decoding(
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    do_sample: bool = False,
    temperature: float | None = None,
    top_p: float | None = None,
    top_k: int | None = None,
    repetition_penalty: float | None = None,
) -> GenerationConfig:
    """The one validated decoding configuration: greedy unless ``do_sample``; budget within 1..MAX_NEW_TOKENS.

    Greedy drops the sampling fields (a checkpoint's sampling defaults must not make greedy sample).
    """
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise GenerationError(f"max_new_tokens must be an integer, got {max_new_tokens!r}")
    if not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise GenerationError(f"max_new_tokens must be between 1 and {MAX_NEW_TOKENS}, got {max_new_tokens}")
    if repetition_penalty is not None and not repetition_penalty > 0:
        raise GenerationError(f"repetition_penalty must be > 0, got {repetition_penalty}")
    fields: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "do_sample": bool(do_sample),
        "repetition_penalty": repetition_penalty,
    }
    if do_sample:
        temperature = 1.0 if temperature is None else temperature
        top_p = 1.0 if top_p is None else top_p
        if not temperature > 0:
            raise GenerationError(f"temperature must be > 0 when sampling, got {temperature}")
        if not 0 < top_p <= 1:
            raise GenerationError(f"top_p must be in (0, 1], got {top_p}")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
            raise GenerationError(f"top_k must be a non-negative integer, got {top_k!r}")
        fields.update(temperature=float(temperature), top_p=float(top_p), top_k=top_k)
    else:
        fields.update(temperature=None, top_p=None, top_k=None)
    config = GenerationConfig(**fields)
    try:
        config.validate(strict=True)
    except ValueError as exc:
        raise GenerationError(f"invalid decoding settings: {exc}") from exc
    return config


def capped(config: GenerationConfig, cap: int) -> GenerationConfig:
    """``config`` with its token budget lowered to ``cap`` (an engine's limit) when it asks for more."""
    if (config.max_new_tokens or cap) <= cap:
        return config
    return decoding(**{**decoding_fields(config), "max_new_tokens": cap})


def decoding_fields(config: GenerationConfig) -> dict[str, Any]:
    """The request-level fields of ``config`` (what records and the UI show)."""
    return {name: getattr(config, name, None) for name in DECODING_FIELDS}


def _generate_kwargs(processor, config: GenerationConfig | None) -> dict[str, Any]:
    if config is None:
        config = decoding()
    if not isinstance(config, GenerationConfig):
        raise GenerationError(f"expected a transformers.GenerationConfig, got {type(config).__name__}")
    tokenizer = processor.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    # Passed as keywords so that the checkpoint's generation_config still gives eos ids and the like.
    fields = {k: v for k, v in decoding_fields(config).items() if v is not None or k in _GREEDY_UNSET}
    return {**fields, "pad_token_id": pad}


def _chat_text(processor, prompt: Prompt) -> str:
    return processor.apply_chat_template(prompt.messages, add_generation_prompt=True, tokenize=False)


def encode(processor, prompt: Prompt):
    """Chat template (with the assistant turn opened) + tokenizer + image processor -> model inputs."""
    _check_prompt(prompt)
    images = list(prompt.images) or None
    return processor(text=[_chat_text(processor, prompt)], images=images, return_tensors="pt")


def encode_batch(processor, prompts: Sequence[Prompt]):
    """Several prompts in one batch, padded on the left so every row's generation starts at the end."""
    texts, images = [], []
    for prompt in prompts:
        _check_prompt(prompt)
        texts.append(_chat_text(processor, prompt))
        images.extend(prompt.images)
    pad = processor.image_token
    found = sum(text.count(pad) for text in texts)
    if found != len(images):
        raise GenerationError(
            f"the prompts hold {found} image placeholder(s) for {len(images)} image(s); "
            f"is {pad!r} written in a question?"
        )
    return processor(
        text=texts, images=images or None, padding=True, padding_side="left", return_tensors="pt"
    )


def _stop_criteria(*events: threading.Event):
    """A StoppingCriteria that ends generation at the next token once any event is set."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _EventStop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            stop = any(event.is_set() for event in events)
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_EventStop()])


@dataclass
class StreamStats:
    """What a `stream_generate` call counted: the tokens the model generated (special ones included)."""

    tokens: int = 0


def stream_generate(
    model,
    processor,
    prompt: Prompt,
    config: GenerationConfig | None = None,
    *,
    stop_event: threading.Event | None = None,
    stats: StreamStats | None = None,
    max_prompt_tokens: int | None = None,
) -> Iterator[str]:
    """Yield the completion as text deltas while ``model.generate`` runs in a worker thread.

    ``max_prompt_tokens``: a longer encoded prompt (text and image tokens) raises `PromptTooLong`
    before the model runs, so one oversized request cannot hold the accelerator in prefill.

    Setting ``stop_event`` (or closing the iterator) stops generation at the next token. An exception
    in the worker (out of memory, a broken checkpoint...) is re-raised here, in the consumer. ``stats``,
    when given, holds the exact count of generated tokens once the stream ends.
    """
    from transformers import TextIteratorStreamer

    class CountingStreamer(TextIteratorStreamer):
        def put(self, value) -> None:
            if stats is not None and not (self.skip_prompt and self.next_tokens_are_prompt):
                stats.tokens += int(value.numel())  # one token per step (streamers take batch 1)
            super().put(value)

    kwargs = _generate_kwargs(processor, config)
    inputs = encode(processor, prompt)
    length = int(inputs["input_ids"].shape[-1])
    if max_prompt_tokens is not None and length > max_prompt_tokens:
        raise PromptTooLong(
            f"The prompt is {length} tokens long, more than this engine's limit of {max_prompt_tokens}: "
            "shorten the question or the options."
        )
    inputs = inputs.to(model.device)
    streamer = CountingStreamer(processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
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
    model, processor, prompts: Sequence[Prompt], config: GenerationConfig | None = None
) -> list[str]:
    """Generate for several prompts in one batch (left padding); return the decoded completions only."""
    import torch

    kwargs = _generate_kwargs(processor, config)
    prompts = list(prompts)
    if not prompts:
        return []
    inputs = encode_batch(processor, prompts).to(model.device)
    with torch.inference_mode():
        output = model.generate(**inputs, **kwargs)
    completions = output[:, inputs["input_ids"].shape[1] :]
    return processor.tokenizer.batch_decode(completions, skip_special_tokens=True)
