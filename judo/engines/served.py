"""A model behind an OpenAI-compatible server (vLLM, SGLang, TGI, ...) as an inspection engine.

Everything but the generation itself is the in-process engine's (`judo.engines.qwen.QwenEngine`):
the same prompt (`judo.prompts`, images at 448x448), the same stream parsing and final checks
(`judo.response`), the same updates, so red cells appear live and a served answer reads exactly
like an in-process one. Only the tokens come from elsewhere: the prompt goes out as chat messages
with the images as PNG data URLs (`judo.openai_api`), the reply streams back as server-sent events.

Robustness: each read is bounded (``timeout_s``), the SDK retries connection errors, 429 and 5xx
before the reply starts (``max_retries``), the whole answer is bounded by ``max_seconds``; Stop
closes the HTTP stream, so the server stops generating too. A server that is down or does not
serve the model makes the engine unavailable with the reason; the app still starts, and the engine
checks again (at most every `RECHECK_S` seconds) when it is asked to run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from judo.engines.base import GenerationSettings, InspectionRequest, Update
from judo.engines.qwen import QwenEngine
from judo.engines.rag import KnowledgeBase
from judo.openai_api import Endpoint, describe_error, prompt_messages

#: Seconds the availability check may take, and how long an "unavailable" verdict is kept.
CHECK_TIMEOUT_S = 3.0
RECHECK_S = 10.0


class ServedError(RuntimeError):
    """A served generation failed; the message is one sentence for the user."""


def as_settings(settings: Any) -> GenerationSettings | None:
    """The decoding fields of a `GenerationSettings` or a `transformers.GenerationConfig`."""
    if settings is None or isinstance(settings, GenerationSettings):
        return settings
    return GenerationSettings(
        max_new_tokens=getattr(settings, "max_new_tokens", None),
        do_sample=getattr(settings, "do_sample", None),
        temperature=getattr(settings, "temperature", None),
        top_p=getattr(settings, "top_p", None),
    )


def request_params(s: Any) -> dict[str, Any]:
    """Chat-completions sampling fields for decoding settings: greedy is temperature 0."""
    params: dict[str, Any] = {"max_tokens": int(s.max_new_tokens)}
    if s.do_sample:
        params.update(temperature=float(s.temperature), top_p=float(s.top_p))
    else:
        params.update(temperature=0.0, top_p=1.0)
    return params


class ServedEngine(QwenEngine):
    """Streams a served model's answer to one inspection request over chat completions."""

    kind = "openai"

    def __init__(
        self,
        id: str,
        label: str,
        endpoint: Endpoint,
        model: str,
        *,
        knowledge: KnowledgeBase | None = None,
        prompt_style: str = "judo",
        defaults: GenerationSettings | None = None,
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
        self.endpoint = endpoint
        self.model_name = model
        self._reason: str | None = None
        self._checked_at: float | None = None
        self._check_lock = threading.Lock()

    # --- availability ------------------------------------------------------------------------------
    def check(self) -> str | None:
        """Ask the server which models it serves; returns the reason this engine cannot run, or None."""
        import openai

        try:
            served = self.endpoint.served_models(timeout_s=CHECK_TIMEOUT_S)
        except openai.NotFoundError:
            served = None  # a server without GET /models: the first answer will tell
        except Exception as err:  # noqa: BLE001 - any failure of the call becomes one sentence
            reason = describe_error(err, self.endpoint, CHECK_TIMEOUT_S)
        else:
            reason = None
            if served is not None and self.model_name not in served:
                listed = ", ".join(served[:5]) or "none"
                reason = f"The server at {self.endpoint.base_url} does not serve {self.model_name!r} (it serves: {listed})."
        with self._check_lock:
            self._reason, self._checked_at = reason, time.monotonic()
        return reason

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
        settings: Any = None,
    ) -> Iterator[Update]:
        reason = self.reason
        if reason is not None:
            yield Update(done=True, error=f"{self.label} is unavailable: {reason}", meta=self.backend_meta())
            return
        yield from super().stream(request, stop_event, as_settings(settings))

    def backend_meta(self) -> dict[str, Any]:
        return {"backend": "openai", "base_url": self.endpoint.base_url, "model": self.model_name}

    def _deltas(
        self, prompt: Any, s: GenerationSettings, stop: threading.Event, usage: dict
    ) -> Iterator[str]:
        try:
            response = self.endpoint.client.chat.completions.create(
                model=self.model_name,
                messages=prompt_messages(prompt),
                stream=True,
                stream_options={"include_usage": True},
                **request_params(s),
                **self.endpoint.call_options,
            )
        except Exception as err:  # noqa: BLE001 - any failure of the call becomes one sentence
            raise ServedError(describe_error(err, self.endpoint)) from None
        chunks = 0
        try:
            for chunk in response:
                if stop.is_set():
                    return
                chunks += 1
                counted = getattr(getattr(chunk, "usage", None), "completion_tokens", None)
                if isinstance(counted, int):
                    usage["completion_tokens"] = counted
                choices = getattr(chunk, "choices", None)
                if choices is None and counted is None:
                    raise ValueError("a stream chunk has neither choices nor usage")
                for choice in choices or []:
                    text = getattr(getattr(choice, "delta", None), "content", None)
                    if text:
                        yield text
        except ServedError:
            raise
        except Exception as err:  # noqa: BLE001 - any failure of the call becomes one sentence
            raise ServedError(describe_error(err, self.endpoint)) from None
        finally:
            response.close()  # Stop, the time limit or an error: the server sees the client go
        if chunks == 0:
            raise ServedError(
                f"The server at {self.endpoint.base_url} answered without any chat-completion chunk "
                "(is it an OpenAI-compatible server?)."
            )

    def complete(self, prompt: Any, settings: Any = None) -> tuple[str, int | None]:
        """The whole completion of a ready `judo.prompts.Prompt` (the evaluator's path): the same
        request and stream as `stream`, joined; (text, completion tokens the server reported).
        Raises `ServedError` with one sentence when the server fails."""
        usage: dict[str, Any] = {}
        text = "".join(self._deltas(prompt, self.settings(as_settings(settings)), threading.Event(), usage))
        return text, usage.get("completion_tokens")

    def _failure(self, err: Exception) -> str:
        return str(err) if isinstance(err, ServedError) else super()._failure(err)

    def _count_tokens(self, text: str) -> int:
        return len(text.split())  # only when the server reports no usage; no tokenizer here
