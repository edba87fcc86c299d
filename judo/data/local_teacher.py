"""A local transformers Qwen2.5-VL as the teacher: the same `chat`/`map`/`request_body`/`config` surface
as `TeacherClient`, so every data builder runs unchanged on a machine without an API endpoint.

The builders write OpenAI-style messages (content parts with `image_url` data URLs, see
`judo.data.teacher.user_message`); here they are turned back into a `judo.prompts.Prompt` (the data URLs
decoded through `judo.images`, so bad images get the same clear errors as everywhere else) and run
with `judo.generation`. One model means one request at a time: `max_concurrency` is 1 and calls are
serialised by a lock. Replies come back in OpenAI's chat.completion shape, so `TeacherReply.raw` looks
the same whichever teacher wrote the data.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judo.data.teacher import TeacherError, TeacherReply, _check_messages

# OpenAI request fields that have no meaning for a local model and are ignored rather than refused,
# so a builder can send the same request to either teacher.
IGNORED_PARAMS = frozenset({"response_format", "n", "stream", "user", "presence_penalty", "frequency_penalty",
                            "logprobs", "top_logprobs", "stop", "model"})


@dataclass
class LocalTeacherConfig:
    """What builders read from `client.config`: where the teacher is and how many calls run at once."""

    model_path: str
    model: str
    max_concurrency: int = 1
    temperature: float = 0.7
    max_tokens: int = 2048

    @property
    def base_url(self) -> str:
        return f"local:{self.model_path}"

    @property
    def endpoint(self) -> str:
        return self.base_url


def _decode_data_url(url: str):
    """PIL image from `data:image/...;base64,...`; plain URLs cannot be fetched offline."""
    from judo.images import ImageInputError, load_image

    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        raise TeacherError(f"the local teacher only takes images as base64 data URLs, got {str(url)[:40]!r}")
    try:
        data = base64.b64decode(url.split(",", 1)[1], validate=True)
    except (binascii.Error, ValueError) as err:
        raise TeacherError(f"image data URL is not valid base64: {err}") from err
    try:
        return load_image(data)
    except ImageInputError as err:  # an HTTP teacher would answer 400: same outcome, a per-item error
        raise TeacherError(f"image data URL does not hold a usable image: {err}") from err


def to_prompt(messages: list[dict]):
    """OpenAI chat messages -> `judo.prompts.Prompt` (text parts kept, each image part a placeholder)."""
    from judo.prompts import Prompt

    out, images = [], []
    for msg in _check_messages(messages):
        content = msg["content"]
        if isinstance(content, str):
            out.append({"role": msg["role"], "content": [{"type": "text", "text": content}]})
            continue
        parts = []
        for part in content if isinstance(content, list) else []:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                parts.append({"type": "text", "text": str(part.get("text", ""))})
            elif kind == "image_url":
                url = part.get("image_url")
                images.append(_decode_data_url(url.get("url") if isinstance(url, dict) else url))
                parts.append({"type": "image"})
            else:
                raise TeacherError(f"unsupported message content part {part!r:.60}")
        out.append({"role": msg["role"], "content": parts})
    return Prompt(messages=out, images=images)


class LocalTeacher:
    """A Qwen2.5-VL checkpoint on this machine as teacher (e.g. Qwen2.5-VL-72B-Instruct in 4 bit)."""

    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        quantization: str | None = None,
        device: str | None = None,
        temperature: float = 0.7,
        max_tokens: int = 2048,
    ):
        from judo.models import load_model, load_processor

        self.config = LocalTeacherConfig(str(model_path), Path(model_path).name or str(model_path),
                                         temperature=temperature, max_tokens=max_tokens)
        self.processor = load_processor(model_path)
        self.model = load_model(model_path, quantization=quantization, device=device)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalTeacher(model_path={self.config.model_path!r})"

    def close(self) -> None:
        """Nothing to release (kept for the same surface as `TeacherClient`)."""

    def __enter__(self) -> "LocalTeacher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request_body(self, messages: list[dict], **params: Any) -> dict:
        """The request as an HTTP teacher would receive it (for `--dry-run` and the raw log)."""
        body = {"model": self.config.model, "messages": _check_messages(messages),
                "temperature": self.config.temperature, "max_tokens": self.config.max_tokens}
        body.update(params)
        return body

    def chat(self, messages: list[dict], **params: Any) -> TeacherReply:
        """Generate one reply. Honoured: temperature (0 = greedy), top_p, max_tokens, seed; the
        OpenAI-only fields in `IGNORED_PARAMS` are ignored; anything else is an error."""
        from judo.generation import GenerationError, generate_batch

        unknown = set(params) - IGNORED_PARAMS - {"temperature", "top_p", "max_tokens", "seed"}
        if unknown:
            raise ValueError(f"the local teacher does not understand {sorted(unknown)}")
        prompt = to_prompt(messages)
        temperature = float(params.get("temperature", self.config.temperature))
        max_tokens = int(params.get("max_tokens", self.config.max_tokens))
        sampling: dict[str, Any] = {"do_sample": temperature > 0}
        if temperature > 0:
            sampling.update(temperature=temperature, top_p=float(params.get("top_p", 1.0)))
        start = time.monotonic()
        with self._lock:
            if params.get("seed") is not None:
                import torch

                torch.manual_seed(int(params["seed"]))
            try:
                (text,) = generate_batch(self.model, self.processor, [prompt], max_new_tokens=max_tokens, **sampling)
            except GenerationError as err:
                raise TeacherError(f"local teacher cannot generate: {err}") from err
        # generate_batch returns text only: re-encoding it counts the tokens closely enough to tell a
        # reply cut by max_tokens ("length") from a finished one.
        n_tokens = len(self.processor.tokenizer(text, add_special_tokens=False)["input_ids"])
        raw = {
            "id": f"local-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.config.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "length" if n_tokens >= max_tokens else "stop"}],
            "usage": {"completion_tokens": n_tokens},
        }
        if not text.strip():
            raise TeacherError(f"local teacher produced an empty message (finish_reason="
                               f"{raw['choices'][0]['finish_reason']!r})", status=None, body="")
        return TeacherReply(text=text, raw=raw, latency_s=time.monotonic() - start)

    def map(self, conversations: Iterable[list[dict]], **params: Any) -> Iterator[tuple[int, TeacherReply | TeacherError]]:
        """`chat` over many conversations, one at a time, in input order; per-item errors are yielded."""
        for index, messages in enumerate(conversations):
            try:
                yield index, self.chat(messages, **params)
            except TeacherError as err:
                yield index, err
