"""The teacher of stages 1-3: any OpenAI-compatible chat-completions endpoint, through the `openai` client.

The paper's teacher is GPT-4o; the same requests work with vLLM, TGI, Ollama or any server that
speaks `POST {base_url}/chat/completions` (`judo.openai_api` holds the endpoint). Building a dataset
means thousands of requests, so the client is made for long unattended runs:

- bounded concurrency (`map` keeps at most `max_concurrency` requests in flight),
- retries with exponential backoff and full jitter on 429, 5xx, timeouts and connection errors, and
  the server's `Retry-After` honoured,
- an immediate `TeacherAuthError` on 401/403 (retrying a bad key only burns time),
- a `TeacherError` that carries the last HTTP status and an excerpt of the body, never the key,
- every successful raw JSON reply kept in `TeacherReply.raw`, so builders can store it verbatim.

The SDK's own retries are off: its backoff ignores a Retry-After beyond two minutes and does not
retry 425 or a reply that is not JSON; the loop here keeps the guarantees above and the SDK sends.

The API key is read from the environment variable named in the config (`OPENAI_API_KEY` by default)
and is sent only in the `Authorization` header; it is never logged or put in an error. Servers that
need no key (a local vLLM) work with the variable unset.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import openai
from PIL import Image

from judo.openai_api import Endpoint, image_to_data_url

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})  # plus any other 5xx
AUTH_STATUSES = frozenset({401, 403})
MAX_RETRY_AFTER_S = 600.0  # a server asking for more than this is treated as asking for this
EXCERPT_CHARS = 300


class TeacherError(RuntimeError):
    """A request failed for good. `status` is the last HTTP status (None for a transport error) and
    `body` an excerpt of the last response body."""

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None):
        super().__init__(message)
        self.status = status
        self.body = body


class TeacherAuthError(TeacherError):
    """The server refused the credentials (401/403); raised at once, never retried."""


@dataclass
class TeacherConfig:
    """Where the teacher lives and how hard to push it.

    `base_url` is the API root as OpenAI's SDK expects it, e.g. `https://api.openai.com/v1` or
    `http://localhost:8000/v1`; a URL that already ends in `/chat/completions` is used as is.
    `temperature` and `max_tokens` are defaults that `chat(..., temperature=...)` may override.
    `timeout_s` bounds each network operation (connect, each read), so a server that stops answering
    is detected within it; a slow server still streaming bytes is not cut off.
    """

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 6
    temperature: float = 0.7
    max_tokens: int = 2048
    backoff_base_s: float = 1.0  # first retry waits up to this long, then 2x, 4x, ... (full jitter)
    backoff_max_s: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"teacher base_url must start with http:// or https://, got {self.base_url!r}")
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError("teacher model name must be a non-empty string")
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0:
            raise ValueError("backoff_base_s and backoff_max_s must be >= 0")

    @property
    def endpoint(self) -> str:
        url = self.base_url.rstrip("/")
        return url if url.endswith("/chat/completions") else url + "/chat/completions"


@dataclass
class TeacherReply:
    """One answer: the assistant text, the server's full JSON reply, and how long it took (all
    attempts included)."""

    text: str
    raw: dict
    latency_s: float
    attempts: int = 1


def user_message(text: str, images: Iterable[Image.Image] = (), *, image_format: str = "PNG") -> dict:
    """A user turn in OpenAI's content-part form: the images first, in order, then the text (so the
    text can say "the first image is the query, the second the template")."""
    if not isinstance(text, str):
        raise TypeError(f"user_message text must be a string, got {type(text).__name__}")
    parts: list[dict] = [
        {"type": "image_url", "image_url": {"url": image_to_data_url(img, image_format)}} for img in images
    ]
    parts.append({"type": "text", "text": text})
    return {"role": "user", "content": parts}


def _check_messages(messages: Any) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list of {'role', 'content'} dicts")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
            raise ValueError(f"messages[{i}] must be a dict with 'role' and 'content'")
    return messages


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."


def _retry_after_s(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent/garbled."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _reply_text(raw: Any, status: int, body: str) -> str:
    """The assistant text of a chat.completion, or a TeacherError naming what is missing."""
    if not isinstance(raw, dict):
        raise TeacherError(
            f"teacher reply is not a JSON object: {_excerpt(body)}", status=status, body=_excerpt(body)
        )
    choices = raw.get("choices")
    if not isinstance(choices, list) or not choices:
        raise TeacherError(
            f"teacher reply has no choices: {_excerpt(body)}", status=status, body=_excerpt(body)
        )
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # some servers return content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str) or not content.strip():
        finish = choices[0].get("finish_reason") if isinstance(choices[0], dict) else None
        raise TeacherError(
            f"teacher reply has an empty message (finish_reason={finish!r}): {_excerpt(body)}",
            status=status,
            body=_excerpt(body),
        )
    return content


class TeacherClient:
    """Thread-safe chat-completions client; one instance serves a whole dataset build."""

    def __init__(self, config: TeacherConfig):
        self.config = config
        self._endpoint = Endpoint(
            config.endpoint,
            api_key_env=config.api_key_env,
            timeout_s=config.timeout_s,
            max_retries=0,
            max_connections=config.max_concurrency,
        )
        self._rng = random.Random()
        self._rng_lock = threading.Lock()

    def __repr__(self) -> str:  # never show the key
        return f"TeacherClient(endpoint={self.config.endpoint!r}, model={self.config.model!r})"

    def close(self) -> None:
        self._endpoint.close()

    def __enter__(self) -> TeacherClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request_body(self, messages: list[dict], **params: Any) -> dict:
        """The exact JSON sent for `messages` (builders show it in `--dry-run`)."""
        body = {
            "model": self.config.model,
            "messages": _check_messages(messages),
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
        }
        body.update(params)
        return body

    def _backoff_s(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter: uniform(0, min(max, base * 2**attempt)); never less than Retry-After."""
        cap = min(self.config.backoff_max_s, self.config.backoff_base_s * (2**attempt))
        with self._rng_lock:
            delay = self._rng.uniform(0.0, cap)
        return max(delay, retry_after) if retry_after is not None else delay

    def chat(self, messages: list[dict], **params: Any) -> TeacherReply:
        """Send one conversation and return the first choice's text. `params` (temperature,
        max_tokens, response_format, seed, ...) are merged into the request body."""
        body = self.request_body(messages, **params)
        cfg = self.config
        start = time.monotonic()
        last = "no attempt made"
        last_status: int | None = None
        last_body: str | None = None
        for attempt in range(cfg.max_retries + 1):
            retry_after = None
            resp = None
            try:
                raw_reply = self._endpoint.client.chat.completions.with_raw_response.create(
                    **body, **self._endpoint.call_options
                )
                resp = raw_reply.http_response
            except openai.APITimeoutError as err:
                last, last_status, last_body = (
                    f"timed out after {cfg.timeout_s:g} s ({type(err).__name__})",
                    None,
                    None,
                )
            except openai.APIConnectionError as err:
                cause = err.__cause__ or err
                last, last_status, last_body = (
                    f"connection error: {type(cause).__name__}: {cause}",
                    None,
                    None,
                )
            except openai.APIStatusError as err:
                resp = err.response
            if resp is not None:
                status, text = resp.status_code, resp.text
                if status in AUTH_STATUSES:
                    raise TeacherAuthError(
                        f"teacher at {cfg.endpoint} refused the credentials (HTTP {status}); set the API key in "
                        f"the environment variable {cfg.api_key_env}"
                        + ("" if self._endpoint.key_set else " (it is not set)")
                        + f". Server said: {_excerpt(text)}",
                        status=status,
                        body=_excerpt(text),
                    )
                if status in RETRY_STATUSES or status >= 500:
                    last, last_status, last_body = f"HTTP {status}: {_excerpt(text)}", status, _excerpt(text)
                    retry_after = _retry_after_s(resp.headers.get("retry-after"))
                elif status >= 400:
                    raise TeacherError(
                        f"teacher at {cfg.endpoint} rejected the request (HTTP {status}): {_excerpt(text)}",
                        status=status,
                        body=_excerpt(text),
                    )
                else:
                    try:
                        raw = json.loads(text)
                    except ValueError:
                        raise TeacherError(
                            f"teacher reply is not valid JSON (HTTP {status}): {_excerpt(text)}",
                            status=status,
                            body=_excerpt(text),
                        ) from None
                    reply_text = _reply_text(raw, status, text)
                    return TeacherReply(reply_text, raw, time.monotonic() - start, attempt + 1)
            if attempt < cfg.max_retries:
                time.sleep(self._backoff_s(attempt, retry_after))
        raise TeacherError(
            f"teacher at {cfg.endpoint} failed after {cfg.max_retries + 1} attempts; last: {last}",
            status=last_status,
            body=last_body,
        )

    def map(
        self, conversations: Iterable[list[dict]], **params: Any
    ) -> Iterator[tuple[int, TeacherReply | TeacherError]]:
        """Run `chat` over many conversations with at most `max_concurrency` in flight, yielding
        `(index, reply_or_error)` as each finishes (not in input order).

        `conversations` is consumed lazily (a generator that renders images on demand stays cheap).
        A per-item `TeacherError` is yielded so one bad item does not stop a build; a
        `TeacherAuthError` is raised instead, since no later request can succeed. Leaving the loop
        early cancels what has not started.
        """
        limit = self.config.max_concurrency
        pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="teacher")
        pending: dict[Future, int] = {}
        source = iter(enumerate(conversations))
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < limit:
                    try:
                        index, messages = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    pending[pool.submit(self.chat, messages, **params)] = index
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    index = pending.pop(future)
                    try:
                        yield index, future.result()
                    except TeacherAuthError:
                        raise
                    except TeacherError as err:
                        yield index, err
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
