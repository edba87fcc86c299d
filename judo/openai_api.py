"""OpenAI-compatible chat completions, the one way the project talks to a model server.

vLLM, SGLang, TGI, Ollama and OpenAI itself all speak ``POST {base_url}/chat/completions``; the
`openai` package is the client. This module holds what every caller shares: the endpoint (API root,
key read from an environment variable and never shown, bounded timeouts), images as PNG data URLs,
a `judo.prompts.Prompt` turned into OpenAI messages, and the client's exceptions turned into one
sentence that says what went wrong and where. The served engine (`judo.engines.served`), the
evaluator's OpenAI backend and the teacher of `judo data` (`judo.data.teacher`) build on it.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
CONNECT_TIMEOUT_S = 5.0
#: A key the SDK insists on when none is set; it is never sent (the header is omitted on each call).
_NO_KEY = "no-key-set"

_FORMATS = {"PNG": ("PNG", "image/png"), "JPEG": ("JPEG", "image/jpeg"), "JPG": ("JPEG", "image/jpeg")}


def image_to_data_url(img: Image.Image, format: str = "PNG") -> str:
    """`data:image/png;base64,...` for an OpenAI `image_url` part. PNG is lossless (a 448x448 model
    input arrives pixel for pixel; the red mask outline of stage 1 stays crisp); JPEG is ~5x smaller."""
    if not isinstance(img, Image.Image):
        raise TypeError(f"image_to_data_url needs a PIL image, got {type(img).__name__}")
    key = str(format).upper()
    if key not in _FORMATS:
        raise ValueError(f"unsupported image format {format!r}: use 'PNG' or 'JPEG'")
    pil_format, mime = _FORMATS[key]
    if (
        pil_format == "JPEG"
        and img.mode != "RGB"
        or pil_format == "PNG"
        and img.mode not in ("RGB", "RGBA", "L", "LA", "P")
    ):
        img = img.convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format=pil_format, **({"quality": 92} if pil_format == "JPEG" else {}))
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def prompt_messages(prompt: Any) -> list[dict[str, Any]]:
    """A `judo.prompts.Prompt` as OpenAI messages: each ``{"type": "image"}`` placeholder becomes an
    ``image_url`` part holding the next image as a PNG data URL, text parts are kept as they are.

    The images are already at the model's size (448x448, `judo.prompts`), so a server that applies
    the model's chat template to these messages sees exactly the in-process inputs.
    """
    images = iter(prompt.images)
    out = []
    for message in prompt.messages:
        content = message["content"]
        if isinstance(content, str):
            out.append({"role": message["role"], "content": content})
            continue
        parts = []
        for part in content:
            if part.get("type") == "image":
                parts.append({"type": "image_url", "image_url": {"url": image_to_data_url(next(images))}})
            else:
                parts.append({"type": "text", "text": part["text"]})
        out.append({"role": message["role"], "content": parts})
    return out


def api_root(base_url: str) -> str:
    """The API root the SDK expects (``http://host:8000/v1``); a full ``.../chat/completions`` URL is
    accepted too."""
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ValueError(f"base URL must start with http:// or https://, got {base_url!r}")
    url = base_url.rstrip("/")
    suffix = "/chat/completions"
    return url.removesuffix(suffix)


@dataclass
class Endpoint:
    """One OpenAI-compatible server: the `openai` client plus the per-call options that go with it.

    ``timeout_s`` bounds each read (a server that stops sending is detected within it; one that keeps
    streaming is not cut off), connecting is bounded by `CONNECT_TIMEOUT_S`. ``max_retries`` is the
    SDK's own retry of connection errors, 408/409/429 and 5xx (with Retry-After) before a reply starts.
    """

    base_url: str
    api_key_env: str = DEFAULT_KEY_ENV
    timeout_s: float = 60.0
    max_retries: int = 2
    max_connections: int = 16
    client: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        import httpx2
        import openai

        self.base_url = api_root(self.base_url)
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        self.key_set = bool(os.environ.get(self.api_key_env))
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=os.environ.get(self.api_key_env) or _NO_KEY,
            timeout=httpx2.Timeout(self.timeout_s, connect=min(CONNECT_TIMEOUT_S, self.timeout_s)),
            max_retries=self.max_retries,
            http_client=httpx2.Client(
                limits=httpx2.Limits(
                    max_connections=self.max_connections, max_keepalive_connections=self.max_connections
                )
            ),
        )

    def __repr__(self) -> str:  # never show the key
        return f"Endpoint(base_url={self.base_url!r})"

    @property
    def call_options(self) -> dict[str, Any]:
        """Keyword arguments for every SDK call: no Authorization header when no key is set."""
        import openai

        return {} if self.key_set else {"extra_headers": {"Authorization": openai.Omit()}}

    def served_models(self, timeout_s: float | None = None) -> list[str]:
        """The model ids the server lists (``GET /models``); raises the SDK's errors."""
        client = (
            self.client if timeout_s is None else self.client.with_options(timeout=timeout_s, max_retries=0)
        )
        return [m.id for m in client.models.list(**self.call_options).data]

    def close(self) -> None:
        self.client.close()


def describe_error(err: BaseException, endpoint: Endpoint, timeout_s: float | None = None) -> str:
    """One sentence for a failed call: what the server did (refused, timed out, answered garbage)."""
    import openai

    where = endpoint.base_url
    if isinstance(err, openai.APITimeoutError):
        limit = timeout_s if timeout_s is not None else endpoint.timeout_s
        return f"The server at {where} did not answer within {limit:g} s."
    if isinstance(err, openai.APIConnectionError):
        return f"The server at {where} cannot be reached (is it running?)."
    if isinstance(err, openai.AuthenticationError | openai.PermissionDeniedError):
        unset = "" if endpoint.key_set else " (it is not set)"
        return (
            f"The server at {where} refused the credentials (HTTP {err.status_code}); "
            f"set the API key in {endpoint.api_key_env}{unset}."
        )
    if isinstance(err, openai.APIStatusError):
        return f"The server at {where} answered HTTP {err.status_code}: {_server_message(err)}."
    if isinstance(err, openai.APIError):  # an error event inside a stream
        return f"The server at {where} reported an error: {_excerpt(err.message)}."
    if isinstance(err, ValueError):  # JSON that does not parse, a chunk without the expected fields
        return f"The server at {where} sent a reply that is not an OpenAI chat completion ({_excerpt(str(err))})."
    return f"The request to {where} failed: {type(err).__name__}: {_excerpt(str(err))}."


def _server_message(err: Any) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body.get("detail", body))
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return _excerpt(str(message))
    return _excerpt(getattr(err, "message", "") or "no message")


def _excerpt(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split()).rstrip(".")
    return text if len(text) <= limit else text[:limit] + "..."
