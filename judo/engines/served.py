"""A model behind an OpenAI-compatible server (vLLM, SGLang, TGI, ...) as an inspection engine.

Everything but the generation itself is the in-process engine's (`judo.engines.qwen.QwenEngine`):
the same prompt (`judo.prompts`, images at 448x448), the same stream parsing and final checks
(`judo.response`), the same updates, so red cells appear live and a served answer reads exactly
like an in-process one. Only the tokens come from elsewhere: the prompt goes out as chat messages
with the images as PNG data URLs (`judo.openai_api`), the reply streams back as server-sent events.

Several endpoints are replicas of one model (a vLLM per GPU or per machine): each request goes to
the least busy one, and `answer_batch` (the evaluator) keeps at most ``concurrency`` requests in
flight per replica.

Robustness: each read is bounded (``timeout_s``), the SDK retries connection errors, 429 and 5xx
before the reply starts (``max_retries``), the whole answer is bounded by ``max_seconds``; Stop
closes the HTTP stream, so the server stops generating too. A server that is down or does not
serve the model makes the engine unavailable with the reason; the app still starts, and the engine
checks again (at most every `RECHECK_S` seconds) when it is asked to run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from judo.engines.base import InspectionRequest, Update
from judo.engines.qwen import QwenEngine
from judo.engines.rag import KnowledgeBase
from judo.openai_api import Endpoint, describe_error, prompt_messages

if TYPE_CHECKING:
    from transformers import GenerationConfig

#: Seconds the availability check may take, and how long an "unavailable" verdict is kept.
CHECK_TIMEOUT_S = 3.0
RECHECK_S = 10.0


class ServedError(RuntimeError):
    """A served generation failed; the message is one sentence for the user."""


def request_params(s: GenerationConfig) -> dict[str, Any]:
    """Chat-completions fields for a decoding configuration: greedy is temperature 0; top_k and
    repetition_penalty are not OpenAI fields but vLLM, SGLang and TGI take them in the body."""
    params: dict[str, Any] = {"max_tokens": int(s.max_new_tokens)}
    if s.do_sample:
        params.update(temperature=float(s.temperature), top_p=float(s.top_p))
    else:
        params.update(temperature=0.0, top_p=1.0)
    extra = {name: getattr(s, name) for name in ("top_k", "repetition_penalty") if getattr(s, name, None)}
    if s.do_sample is False:
        extra.pop("top_k", None)
    if extra:
        params["extra_body"] = extra
    return params


class ServedEngine(QwenEngine):
    """Streams a served model's answer to one inspection request over chat completions."""

    kind = "openai"

    def __init__(
        self,
        id: str,
        label: str,
        endpoints: Endpoint | Sequence[Endpoint],
        model: str,
        *,
        concurrency: int = 4,
        knowledge: KnowledgeBase | None = None,
        prompt_style: str = "judo",
        defaults: GenerationConfig | None = None,
        max_seconds: float = 300.0,
        description: str = "",
    ) -> None:
        super().__init__(
            id,
            label,
            None,
            None,
            knowledge=knowledge,
            prompt_style=prompt_style,
            defaults=defaults,
            max_seconds=max_seconds,
            checkpoint=model,
            description=description,
        )
        self.endpoints = [endpoints] if isinstance(endpoints, Endpoint) else list(endpoints)
        if not self.endpoints:
            raise ValueError("a served engine needs at least one endpoint")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.concurrency = concurrency
        self.model_name = model
        self._busy = [0] * len(self.endpoints)
        self._busy_lock = threading.Lock()
        self._reason: str | None = None
        self._checked_at: float | None = None
        self._check_lock = threading.Lock()

    @property
    def endpoint(self) -> Endpoint:
        """The first replica (the only one in the usual case)."""
        return self.endpoints[0]

    # --- availability ------------------------------------------------------------------------------
    def check(self) -> str | None:
        """Ask every replica which models it serves; returns why this engine cannot run, or None."""
        reason = None
        for endpoint in self.endpoints:
            reason = self._check_one(endpoint)
            if reason is not None:
                break
        with self._check_lock:
            self._reason, self._checked_at = reason, time.monotonic()
        return reason

    def _check_one(self, endpoint: Endpoint) -> str | None:
        import openai

        try:
            served = endpoint.served_models(timeout_s=CHECK_TIMEOUT_S)
        except openai.NotFoundError:
            return None  # a server without GET /models: the first answer will tell
        except Exception as err:  # noqa: BLE001 - any failure of the call becomes one sentence
            return describe_error(err, endpoint, CHECK_TIMEOUT_S)
        if self.model_name not in served:
            listed = ", ".join(served[:5]) or "none"
            return (
                f"The server at {endpoint.base_url} does not serve {self.model_name!r} (it serves: {listed})."
            )
        return None

    @property
    def reason(self) -> str | None:  # type: ignore[override]
        with self._check_lock:
            stale = self._checked_at is None or (
                self._reason is not None and time.monotonic() - self._checked_at > RECHECK_S
            )
        return self.check() if stale else self._reason

    @property
    def available(self) -> bool:  # type: ignore[override]
        return self.reason is None

    # --- generation --------------------------------------------------------------------------------
    def stream(
        self,
        request: InspectionRequest,
        stop_event: threading.Event | None = None,
        settings: GenerationConfig | None = None,
    ) -> Iterator[Update]:
        reason = self.reason
        if reason is not None:
            yield Update(done=True, error=f"{self.label} is unavailable: {reason}", meta=self.backend_meta())
            return
        yield from super().stream(request, stop_event, settings)

    def answer_batch(
        self, requests: list[InspectionRequest], settings: GenerationConfig | None = None
    ) -> list[Update]:
        """Final updates for several requests, in order, ``concurrency`` per replica at a time."""
        if not requests:
            return []
        workers = min(len(requests), self.concurrency * len(self.endpoints))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"served-{self.id}") as pool:
            return list(pool.map(lambda request: self.answer(request, None, settings), requests))

    def backend_meta(self) -> dict[str, Any]:
        return {"backend": "openai", "model": self.model_name}

    def _deltas(
        self, prompt: Any, s: GenerationConfig, stop: threading.Event, reported: dict
    ) -> Iterator[str]:
        with self._busy_lock:  # the least busy replica; with n x concurrency callers none gets more
            i = min(range(len(self.endpoints)), key=self._busy.__getitem__)
            self._busy[i] += 1
        try:
            yield from self._deltas_from(self.endpoints[i], prompt, s, stop, reported)
        finally:
            with self._busy_lock:
                self._busy[i] -= 1

    def _deltas_from(
        self, endpoint: Endpoint, prompt: Any, s: GenerationConfig, stop: threading.Event, reported: dict
    ) -> Iterator[str]:
        reported["base_url"] = endpoint.base_url
        try:
            response = endpoint.client.chat.completions.create(
                model=self.model_name,
                messages=prompt_messages(prompt),
                stream=True,
                stream_options={"include_usage": True},
                **request_params(s),
                **endpoint.call_options,
            )
        except Exception as err:  # noqa: BLE001 - any failure of the call becomes one sentence
            raise ServedError(describe_error(err, endpoint)) from None
        chunks = 0
        try:
            for chunk in response:
                if stop.is_set():
                    return
                chunks += 1
                counted = getattr(getattr(chunk, "usage", None), "completion_tokens", None)
                if isinstance(counted, int):
                    reported["completion_tokens"] = counted
                choices = getattr(chunk, "choices", None)
                if choices is None and counted is None:
                    raise ValueError("a stream chunk has neither choices nor usage")
                for choice in choices or []:
                    text = getattr(getattr(choice, "delta", None), "content", None)
                    if text:
                        yield text
        except Exception as err:  # noqa: BLE001 - any failure of the stream becomes one sentence
            raise ServedError(describe_error(err, endpoint)) from None
        finally:
            response.close()  # Stop, the time limit or an error: the server sees the client go
        if chunks == 0:
            raise ServedError(
                f"The server at {endpoint.base_url} answered without any chat-completion chunk "
                "(is it an OpenAI-compatible server?)."
            )

    def _failure(self, err: Exception) -> str:
        return str(err) if isinstance(err, ServedError) else super()._failure(err)

    def _count_tokens(self, text: str) -> int:
        return len(text.split())  # only when the server reports no usage; no tokenizer here
