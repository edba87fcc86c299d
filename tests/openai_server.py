"""A real OpenAI-compatible model server on 127.0.0.1 for tests and benchmarks (a fixture, not product).

FastAPI + uvicorn in a background thread on a free port, serving a Qwen2.5-VL checkpoint (the tiny
random one in tests) with `transformers`, the way vLLM serves one:

- ``GET /v1/models``; ``POST /v1/chat/completions`` with OpenAI's request fields (model, messages
  with ``image_url`` data URLs, max_tokens / max_completion_tokens, temperature (0 = greedy), top_p,
  seed, stream, stream_options.include_usage);
- streaming as server-sent events, one chunk per generated token (text decoded incrementally, a
  character still incomplete held back), then the finish reason and the usage;
- a client that goes away stops the generation at the next token (counted in ``cancelled``).

Misbehaviour on demand: ``faults`` is a list consumed one entry per chat call (``None`` = behave)
or a callable ``(call_index, body) -> Fault | None``; ``token_delay_s`` slows every token down.
Every chat request is recorded (``requests``: parsed body, time), in-flight requests are counted.

    with OpenAIServer(tiny_dir, model_name="tiny") as server:
        engine = ServedEngine("s", "S", Endpoint(server.base_url), "tiny")
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour: ``status`` (answer HTTP ``status`` with an OpenAI error body and an
    optional Retry-After), ``sleep`` (wait ``seconds`` before answering: the client times out),
    ``garbage`` (HTTP 200 whose stream/body is not chat-completion JSON), ``stall`` (stream
    ``after`` tokens, then go silent for ``seconds``), ``stream_error`` (an error event mid-stream)."""

    kind: str
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0
    after: int = 0
    message: str = ""

    @staticmethod
    def http(status: int, message: str | None = None, retry_after: float | None = None) -> Fault:
        return Fault(
            "status",
            status=status,
            message=message or f"scripted HTTP {status}",
            retry_after=None if retry_after is None else str(retry_after),
        )

    @staticmethod
    def timeout(seconds: float) -> Fault:
        return Fault("sleep", seconds=seconds)

    @staticmethod
    def garbage() -> Fault:
        return Fault("garbage")

    @staticmethod
    def stall(after: int, seconds: float) -> Fault:
        return Fault("stall", after=after, seconds=seconds)

    @staticmethod
    def stream_error(after: int, message: str = "the engine died") -> Fault:
        return Fault("stream_error", after=after, message=message)


@dataclass
class Recorded:
    index: int
    body: dict
    received_at: float


def _image(url: Any):
    """A PIL image from a base64 data URL (a server offline cannot fetch http URLs)."""
    from judo.images import ImageInputError, load_image

    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        raise ValueError(f"images must be base64 data URLs, got {str(url)[:40]!r}")
    try:
        return load_image(base64.b64decode(url.split(",", 1)[1], validate=True))
    except (binascii.Error, ImageInputError) as err:
        raise ValueError(f"the image data URL does not hold a usable image: {err}") from None


def to_prompt(messages: Any):
    """OpenAI chat messages -> `judo.prompts.Prompt`, the way a server hands them to the chat template:
    text parts kept, each ``image_url`` part an image placeholder filled by its decoded picture."""
    from judo.prompts import Prompt

    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list")
    out, images = [], []
    for message in messages:
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise ValueError("each message needs a role and a content")
        content = message["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        parts = []
        for part in content if isinstance(content, list) else []:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                parts.append({"type": "text", "text": str(part.get("text", ""))})
            elif kind == "image_url":
                url = part.get("image_url")
                images.append(_image(url.get("url") if isinstance(url, dict) else url))
                parts.append({"type": "image"})
            else:
                raise ValueError(f"unsupported content part {part!r:.60}")
        out.append({"role": message["role"], "content": parts})
    return Prompt(messages=out, images=images)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class OpenAIServer:
    """See the module docstring. ``parallel`` bounds how many generations run at once (the rest wait)."""

    model_dir: Any
    model_name: str = "tiny"
    faults: Sequence[Fault | None] | Callable[[int, dict], Fault | None] | None = None
    token_delay_s: float = 0.0
    parallel: int = 1
    model: Any = None
    processor: Any = None
    requests: list[Recorded] = field(default_factory=list)
    cancelled: int = 0
    completed: int = 0
    max_in_flight: int = 0
    #: request index -> the token ids generated for it (special tokens included), once it finished
    generated: dict[int, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model is None:
            from judo.models import load_model, load_processor

            self.processor = load_processor(self.model_dir)
            self.model = load_model(self.model_dir, device="cpu")
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(self.parallel)
        self._in_flight = 0
        self._server = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, port: int | None = None) -> OpenAIServer:
        import uvicorn

        self.port = port or free_port()
        config = uvicorn.Config(
            self._app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="openai-test-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test OpenAI server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self) -> Self:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def calls(self) -> int:
        return len(self.requests)

    @property
    def in_flight(self) -> int:
        """Generations running now (a cancelled one ends at its next token)."""
        with self._lock:
            return self._in_flight

    # --- the app -----------------------------------------------------------------------------------
    def _fault(self, index: int, body: dict) -> Fault | None:
        if self.faults is None:
            return None
        if callable(self.faults):
            return self.faults(index, body)
        return self.faults[index] if index < len(self.faults) else None

    def _app(self):
        app = FastAPI()

        def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
            body = {"error": {"message": message, "type": "invalid_request_error", "code": status}}
            return JSONResponse(body, status_code=status, headers=headers)

        @app.get("/v1/models")
        async def models():
            return {
                "object": "list",
                "data": [{"id": self.model_name, "object": "model", "owned_by": "judo-tests"}],
            }

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            try:
                body = await request.json()
            except ValueError:
                return error(400, "the body is not JSON")
            with self._lock:
                index = len(self.requests)
                self.requests.append(Recorded(index, body, time.monotonic()))
            fault = self._fault(index, body)
            if fault is not None and fault.kind == "status":
                headers = {"retry-after": fault.retry_after} if fault.retry_after else None
                return error(fault.status, fault.message, headers)
            if fault is not None and fault.kind == "sleep":
                await asyncio.sleep(fault.seconds)
            if body.get("model") != self.model_name:
                return error(404, f"The model `{body.get('model')}` does not exist.")
            try:
                job = self._job(body, index)
            except ValueError as err:
                return error(400, str(err))
            if fault is not None and fault.kind == "garbage":
                if body.get("stream"):
                    return StreamingResponse(
                        iter(["data: <html>upstream proxy error</html>\n\n"]), media_type="text/event-stream"
                    )
                return PlainTextResponse("<html>upstream proxy error</html>")
            if body.get("stream"):
                return StreamingResponse(self._events(job, fault), media_type="text/event-stream")
            text, n_tokens, finish = await asyncio.to_thread(self._complete, job)
            return {
                "id": job["id"],
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model_name,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
                ],
                "usage": {
                    "prompt_tokens": job["prompt_tokens"],
                    "completion_tokens": n_tokens,
                    "total_tokens": job["prompt_tokens"] + n_tokens,
                },
            }

        return app

    # --- generation --------------------------------------------------------------------------------
    def _job(self, body: dict, index: int) -> dict:
        """Validated generation inputs of one request; ValueError -> HTTP 400."""
        from judo.generation import GenerationError, _generate_kwargs, decoding, encode

        prompt = to_prompt(body.get("messages"))
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or 256
        temperature = float(body.get("temperature", 1.0) or 0.0)
        sampling = temperature > 0
        try:
            config = decoding(
                max_new_tokens=int(max_tokens),
                do_sample=sampling,
                temperature=temperature if sampling else None,
                top_p=float(body.get("top_p") or 1.0) if sampling else None,
                top_k=body.get("top_k") if sampling else None,
                repetition_penalty=body.get("repetition_penalty"),
            )
        except GenerationError as err:
            raise ValueError(str(err)) from None
        kwargs = _generate_kwargs(self.processor, config)
        inputs = encode(self.processor, prompt)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "inputs": inputs,
            "kwargs": kwargs,
            "seed": body.get("seed"),
            "usage": bool((body.get("stream_options") or {}).get("include_usage")),
            "prompt_tokens": int(inputs["input_ids"].shape[1]),
            "max_tokens": int(max_tokens),
            "index": index,
        }

    def _generate(
        self, job: dict, tokens: queue.Queue[int | None | BaseException], stop: threading.Event
    ) -> None:
        """model.generate in this thread, each new token id put on ``tokens``, then None."""
        import torch
        from transformers.generation.streamers import BaseStreamer

        from judo.generation import _stop_criteria

        class Ids(BaseStreamer):
            def __init__(self) -> None:
                self.prompt_seen = False

            def put(self, value) -> None:
                if not self.prompt_seen:  # the first call carries the prompt
                    self.prompt_seen = True
                    return
                for token in value.reshape(-1).tolist():
                    tokens.put(int(token))

            def end(self) -> None:
                pass

        with self._slots:
            with self._lock:
                self._in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self._in_flight)
            try:
                if job["seed"] is not None:
                    torch.manual_seed(int(job["seed"]))
                with torch.inference_mode():
                    self.model.generate(
                        **job["inputs"].to(self.model.device),
                        **job["kwargs"],
                        streamer=Ids(),
                        stopping_criteria=_stop_criteria(stop),
                    )
            except BaseException as err:  # noqa: BLE001 - handed to the response
                tokens.put(err)
            finally:
                with self._lock:
                    self._in_flight -= 1
                tokens.put(None)

    def _special_ids(self) -> set[int]:
        return set(self.processor.tokenizer.all_special_ids)

    def _complete(self, job: dict) -> tuple[str, int, str]:
        tokens: queue.Queue = queue.Queue()
        self._generate(job, tokens, threading.Event())
        ids = []
        while (item := tokens.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            ids.append(item)
        text = self.processor.tokenizer.decode(ids, skip_special_tokens=True)
        with self._lock:
            self.completed += 1
            self.generated[job["index"]] = ids
        return text, len(ids), "length" if len(ids) >= job["max_tokens"] else "stop"

    async def _events(self, job: dict, fault: Fault | None):
        """SSE chunks: role, one per token, the finish reason, the usage, [DONE]."""
        tokenizer = self.processor.tokenizer
        special = self._special_ids()
        tokens: queue.Queue = queue.Queue()
        stop = threading.Event()
        worker = threading.Thread(target=self._generate, args=(job, tokens, stop), daemon=True)
        worker.start()
        finished = False

        def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> str:
            data = {
                "id": job["id"],
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": self.model_name,
                "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if usage:
                data["usage"] = usage
            return f"data: {json.dumps(data)}\n\n"

        try:
            yield chunk({"role": "assistant", "content": ""})
            ids: list[int] = []
            sent = ""
            while True:
                item = await asyncio.to_thread(tokens.get)
                if item is None:
                    break
                if isinstance(item, BaseException):
                    err = {"error": {"message": f"generation failed: {item}", "code": 500}}
                    yield f"data: {json.dumps(err)}\n\n"
                    return
                ids.append(item)
                if fault is not None and fault.kind == "stall" and len(ids) == fault.after:
                    await asyncio.sleep(fault.seconds)
                if fault is not None and fault.kind == "stream_error" and len(ids) == fault.after:
                    yield f"data: {json.dumps({'error': {'message': fault.message, 'code': 500}})}\n\n"
                    return
                if self.token_delay_s:
                    await asyncio.sleep(self.token_delay_s)
                if item in special:
                    continue
                text = tokenizer.decode(ids, skip_special_tokens=True)
                if text.endswith("\ufffd") or not text.startswith(sent):
                    continue  # a character still incomplete: wait for the next token
                if len(text) > len(sent):
                    yield chunk({"content": text[len(sent) :]})
                    sent = text
            text = tokenizer.decode(ids, skip_special_tokens=True)
            if text.startswith(sent) and len(text) > len(sent):
                yield chunk({"content": text[len(sent) :]})
            finish = "length" if len(ids) >= job["max_tokens"] else "stop"
            yield chunk({}, finish)
            if job["usage"]:
                n = len(ids)
                yield chunk(
                    {},
                    usage={
                        "prompt_tokens": job["prompt_tokens"],
                        "completion_tokens": n,
                        "total_tokens": job["prompt_tokens"] + n,
                    },
                )
            yield "data: [DONE]\n\n"
            finished = True
            with self._lock:
                self.completed += 1
                self.generated[job["index"]] = ids
        finally:
            stop.set()
            if not finished:
                with self._lock:
                    self.cancelled += 1


@contextlib.contextmanager
def serving(model_dir, **kwargs):
    """``with serving(tiny_dir) as server:`` (an `OpenAIServer` started and stopped)."""
    server = OpenAIServer(model_dir, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()
