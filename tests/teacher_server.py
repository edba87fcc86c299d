"""A real OpenAI-compatible chat-completions server on 127.0.0.1 for tests (no pytest needed).

It is a stdlib `ThreadingHTTPServer` in a background thread on a free port, speaking
`POST /v1/chat/completions` with OpenAI's response JSON. Tests script it with

- `reply(request_json) -> str | dict`: the assistant text (wrapped in a chat.completion), or a
  complete response dict sent as is;
- `faults`: a list consumed one entry per call (`None` = behave normally), or a callable
  `(call_index, request_json) -> Fault | None`; see `Fault` for 429/500/timeout/401/invalid
  JSON/empty choices/dropped connections;
- `delay_s`: every reply waits this long (makes concurrent requests overlap).

Every request is recorded (`server.requests`: headers, parsed body, time), and the server counts
requests in flight (`server.max_in_flight`), so tests can check data URLs, model names, the auth
header and the client's concurrency bound.

    with TeacherServer(reply=lambda req: "hello", faults=[Fault.status(429, retry_after=1)]) as server:
        client = TeacherClient(TeacherConfig(base_url=server.base_url, model="m"))
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour. `kind` is one of: status (send `status` with `body` and an optional
    Retry-After), sleep (wait `seconds`, then reply normally: the client has timed out by then),
    invalid_json, empty_choices, empty_content, drop (close the socket without a response)."""

    kind: str
    status: int = 500
    retry_after: str | None = None
    body: str = ""
    seconds: float = 0.0

    @staticmethod
    def http(status: int, body: str | None = None, retry_after: float | str | None = None) -> Fault:
        default = json.dumps({"error": {"message": f"scripted HTTP {status}", "code": status}})
        return Fault(
            "status",
            status=status,
            body=default if body is None else body,
            retry_after=None if retry_after is None else str(retry_after),
        )

    @staticmethod
    def timeout(seconds: float) -> Fault:
        return Fault("sleep", seconds=seconds)

    @staticmethod
    def invalid_json() -> Fault:
        return Fault("invalid_json")

    @staticmethod
    def empty_choices() -> Fault:
        return Fault("empty_choices")

    @staticmethod
    def empty_content() -> Fault:
        return Fault("empty_content")

    @staticmethod
    def drop() -> Fault:
        return Fault("drop")


@dataclass
class RecordedRequest:
    """What the server received: method, path, headers (lower-case keys), parsed JSON body."""

    index: int
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float = field(default_factory=time.monotonic)

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    def image_urls(self) -> list[str]:
        """Every `image_url.url` in the messages, in order."""
        urls = []
        for msg in self.body.get("messages", []) if isinstance(self.body, dict) else []:
            content = msg.get("content")
            if isinstance(content, list):
                urls += [
                    p["image_url"]["url"]
                    for p in content
                    if isinstance(p, dict) and p.get("type") == "image_url"
                ]
        return urls

    def texts(self) -> list[str]:
        """Every text in the messages (plain string contents and text parts), in order."""
        out = []
        for msg in self.body.get("messages", []) if isinstance(self.body, dict) else []:
            content = msg.get("content")
            if isinstance(content, str):
                out.append(content)
            elif isinstance(content, list):
                out += [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return out


def default_reply(request: dict) -> str:
    """Echo of the last text the client sent, so tests can tell replies apart."""
    texts = RecordedRequest(0, "POST", PATH, {}, request).texts()
    return f"echo: {texts[-1] if texts else ''}"


def completion_json(content: str | None, model: str, index: int) -> dict:
    """A chat.completion object as OpenAI returns it."""
    return {
        "id": f"chatcmpl-test-{index}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class _QuietServer(ThreadingHTTPServer):
    """Injected faults (dropped connections, clients that time out) end requests abruptly by design:
    keep them out of the test log instead of printing a traceback per request."""

    def handle_error(self, request, client_address) -> None:
        pass


class TeacherServer:
    """The server; use as a context manager or call `start()`/`stop()`."""

    def __init__(
        self,
        reply: Callable[[dict], str | dict] = default_reply,
        *,
        faults: Sequence[Fault | None] | Callable[[int, dict], Fault | None] = (),
        delay_s: float = 0.0,
        api_key: str | None = None,
    ):
        """`api_key`: when set, requests without `Authorization: Bearer <api_key>` get a 401."""
        self.reply = reply
        self.faults = faults
        self.delay_s = delay_s
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> TeacherServer:
        handler = type("Handler", (_Handler,), {"owner": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="teacher-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> TeacherServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("TeacherServer is not running: call start() or use it in a with block")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """The API root to give the client, e.g. http://127.0.0.1:PORT/v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def calls(self) -> int:
        return len(self.requests)

    # -- scripting ---------------------------------------------------------------------------
    def _fault_for(self, index: int, body: Any) -> Fault | None:
        if callable(self.faults):
            return self.faults(index, body)
        return self.faults[index] if index < len(self.faults) else None


class _Handler(BaseHTTPRequestHandler):
    owner: TeacherServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test): nothing to do

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        server = self.owner
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with server._lock:
            index = len(server.requests)
            server.requests.append(
                RecordedRequest(
                    index, "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
            )
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            self._respond(server, index, body)
        finally:
            with server._lock:
                server.in_flight -= 1

    def _respond(self, server: TeacherServer, index: int, body: Any) -> None:
        if self.path.rstrip("/") != PATH:
            return self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}).encode())
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self._send(
                400, json.dumps({"error": {"message": "body must be JSON with messages"}}).encode()
            )
        if server.api_key is not None and self.headers.get("Authorization") != f"Bearer {server.api_key}":
            return self._send(401, json.dumps({"error": {"message": "Incorrect API key provided"}}).encode())
        if server.delay_s:
            server._stopping.wait(server.delay_s)
        fault = server._fault_for(index, body)
        model = str(body.get("model", ""))
        if fault is not None:
            if fault.kind == "status":
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                return self._send(fault.status, fault.body.encode(), headers)
            if fault.kind == "sleep":
                server._stopping.wait(fault.seconds)
            elif fault.kind == "invalid_json":
                return self._send(200, b'{"id": "chatcmpl-broken", "choices": [')
            elif fault.kind == "empty_choices":
                payload = completion_json("", model, index) | {"choices": []}
                return self._send(200, json.dumps(payload).encode())
            elif fault.kind == "empty_content":
                return self._send(200, json.dumps(completion_json(None, model, index)).encode())
            elif fault.kind == "drop":
                self.close_connection = True
                try:
                    self.connection.shutdown(2)  # socket.SHUT_RDWR
                except OSError:
                    pass
                return None
            else:
                raise ValueError(f"unknown fault kind {fault.kind!r}")
        try:
            result = server.reply(body)
        except Exception as err:  # a broken reply script shows up in the client's error, not as a hang
            message = f"reply function raised {type(err).__name__}: {err}"
            return self._send(500, json.dumps({"error": {"message": message}}).encode())
        payload = result if isinstance(result, dict) else completion_json(str(result), model, index)
        return self._send(200, json.dumps(payload).encode())
