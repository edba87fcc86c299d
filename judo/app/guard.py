"""What one client may cost the served app: sign-in throttling, upload quotas, owner-only files.

Three ASGI middlewares around Gradio's own FastAPI app (installed through ``launch(app_kwargs=
{"middleware": ...})``, so ``python app.py`` on a Space, ``make app`` and ``judo app`` all get them):

- `LoginThrottle`: Gradio's ``POST /login`` checks passwords as fast as they come. Attempts are
  counted per client address and per user name in moving windows (the `limits` library); past either
  limit the attempt is refused with 429 and "try again in N s" without the password being checked.
  Failed sign-ins are logged. A correct sign-in clears its user name's count.
- `UploadQuota`: ``POST /gradio_api/upload`` needs no login when none is set (the default, and a
  public Space). Each client address may send so many bytes per window, and Gradio's upload/cache
  folder stays under a total cap: the oldest entries are removed first, never ones younger than
  ``upload_keep_s`` (a queued inspection may still need them) and none the app cached itself before
  it served (examples, gallery); when that cannot make room the upload is refused (507).
- `OwnedFiles`: hands each browser or API client a ``judo-client`` cookie and refuses (404) a file
  the app wrote for someone else (see `judo.app.owner`).

Refusals are one sentence in a JSON ``detail``, as Gradio's own errors are.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote

from limits import RateLimitItem
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from starlette.middleware import Middleware

from judo.app.owner import CLIENT_COOKIES, OWNERS, client_id, cookie_value, new_token, owner_from
from judo.engines.config import LimitsConfig, parse_byte_rate, parse_rate_text

log = logging.getLogger(__name__)
#: A sign-in form is a user name and a password: anything bigger is not one.
MAX_LOGIN_BODY = 16 * 1024


def client_address(scope: dict, trust_forwarded_for: bool) -> str:
    """The client's address; X-Forwarded-For's first entry only when the proxy in front is trusted."""
    if trust_forwarded_for:
        forwarded = _header(scope, b"x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key == name:
            return value.decode("latin-1")
    return None


async def _refuse(send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": message}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    head += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def _wait_s(limiter, item: RateLimitItem, *key: str) -> int:
    reset = limiter.get_window_stats(item, *key).reset_time
    return max(1, round(reset - time.time()))


# ------------------------------------------------------------------------------------------ login
class LoginThrottle:
    """Counts sign-in attempts per client address and per user name; refuses past either limit."""

    def __init__(self, app, limits: LimitsConfig) -> None:
        self.app = app
        self.per_client = parse_rate_text(limits.login_per_client)
        self.per_user = parse_rate_text(limits.login_per_user)
        self.trust = limits.trust_forwarded_for
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope, receive, send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not scope["path"].rstrip("/").endswith("/login")
        ):
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_LOGIN_BODY:
                await _refuse(
                    send, 413, "A sign-in form is a user name and a password; this request is too large."
                )
                return
        fields = parse_qs(body.decode("utf-8", "replace"))
        user = (fields.get("username") or [""])[0].strip()[:128]
        client = client_address(scope, self.trust)
        if not self.limiter.hit(self.per_client, "login-client", client):
            log.warning("sign-in refused: too many attempts from %s", client)
            wait = _wait_s(self.limiter, self.per_client, "login-client", client)
            await _refuse(
                send,
                429,
                f"Too many sign-in attempts from this address: try again in {wait} s.",
                {"retry-after": str(wait)},
            )
            return
        if not self.limiter.hit(self.per_user, "login-user", user):
            log.warning("sign-in refused: too many attempts for user %r (from %s)", user, client)
            wait = _wait_s(self.limiter, self.per_user, "login-user", user)
            await _refuse(
                send,
                429,
                f"Too many sign-in attempts for this user: try again in {wait} s.",
                {"retry-after": str(wait)},
            )
            return
        status: list[int] = []

        async def replay():
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        async def watch(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, replay, watch)
        if status and status[0] == 200:
            self.limiter.clear(self.per_user, "login-user", user)
        elif status:
            log.warning("failed sign-in for user %r from %s", user, client)


# ---------------------------------------------------------------------------------------- uploads
def folder_entries(folder: Path) -> list[tuple[float, int, Path]]:
    """(newest mtime, bytes, path) of each top-level entry of Gradio's folder (one per cached file)."""
    out = []
    try:
        children = list(os.scandir(folder))
    except OSError:
        return out
    for child in children:
        try:
            if child.is_dir(follow_symlinks=False):
                size, newest = 0, child.stat(follow_symlinks=False).st_mtime
                for root, _dirs, files in os.walk(child.path):
                    for name in files:
                        st = os.lstat(os.path.join(root, name))
                        size += st.st_size
                        newest = max(newest, st.st_mtime)
            else:
                st = child.stat(follow_symlinks=False)
                size, newest = st.st_size, st.st_mtime
        except OSError:
            continue
        out.append((newest, size, Path(child.path)))
    return out


def folder_bytes(folder: Path) -> int:
    return sum(size for _t, size, _p in folder_entries(folder))


def make_room(
    folder: Path, needed: int, cap: int, keep_s: float, protected: frozenset[str] = frozenset()
) -> bool:
    """Remove the oldest entries (none younger than ``keep_s``, none named in ``protected``) until ``needed``
    more bytes fit under ``cap``; True when they fit."""
    entries = sorted(folder_entries(folder))
    used = sum(size for _t, size, _p in entries)
    cutoff = time.time() - keep_s
    for mtime, size, path in entries:
        if used + needed <= cap or mtime > cutoff:
            break
        if path.name in protected:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        used -= size
        log.info("upload folder over its cap: removed %s (%d bytes)", path.name, size)
    return used + needed <= cap


class UploadQuota:
    """A byte budget per client address on ``/upload``, and a total cap on Gradio's upload folder."""

    def __init__(self, app, limits: LimitsConfig) -> None:
        self.app = app
        self.rate_bytes, self.rate = parse_byte_rate(limits.upload_per_client)
        self.rate_text = limits.upload_per_client
        self.cap = limits.upload_folder_cap
        self.keep_s = limits.upload_keep_s
        self.trust = limits.trust_forwarded_for
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._lock = threading.Lock()
        self._in_flight = 0
        #: What the app cached itself before serving (the examples, the gallery): never removed.
        self._own: frozenset[str] | None = None

    def _folder(self, scope: dict) -> Path:
        return Path(getattr(scope.get("app"), "uploaded_file_dir", None) or _gradio_folder())

    async def __call__(self, scope, receive, send) -> None:
        if self._own is None and scope["type"] == "http":
            self._own = frozenset(p.name for _t, _s, p in folder_entries(self._folder(scope)))
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not scope["path"].rstrip("/").endswith("/upload")
        ):
            await self.app(scope, receive, send)
            return
        length_text = _header(scope, b"content-length")
        if not length_text or not length_text.isdigit():
            await _refuse(send, 411, "An upload must state its size (Content-Length).")
            return
        length = int(length_text)
        client = client_address(scope, self.trust)
        if length > self.rate_bytes or not self.limiter.hit(self.rate, "upload", client, cost=max(1, length)):
            wait = _wait_s(self.limiter, self.rate, "upload", client)
            log.warning(
                "upload of %d bytes refused: %s is over its quota (%s)", length, client, self.rate_text
            )
            await _refuse(
                send,
                429,
                f"Upload quota reached ({self.rate_text} per address): try again in {wait} s.",
                {"retry-after": str(wait)},
            )
            return
        with self._lock:
            fits = make_room(
                self._folder(scope), length + self._in_flight, self.cap, self.keep_s, self._own or frozenset()
            )
            if fits:
                self._in_flight += length
        if not fits:
            log.warning("upload of %d bytes refused: the upload folder is at its cap", length)
            await _refuse(send, 507, "The server's upload space is full: try again in a few minutes.")
            return
        try:
            await self.app(scope, receive, send)
        finally:
            with self._lock:
                self._in_flight -= length


def _gradio_folder() -> str:
    from gradio.utils import get_upload_folder

    return get_upload_folder()


# ------------------------------------------------------------------------------------------ files
class OwnedFiles:
    """Gives each client a ``judo-client`` cookie; serves the app's own files only to their owner."""

    def __init__(self, app, limits: LimitsConfig) -> None:
        self.app = app
        self.enforce = limits.owner_only_files

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookie_header = _header(scope, b"cookie")
        new_id = None
        if not client_id(cookie_header):
            # Seen by this request's handler as if the client had sent it, and set on the response.
            new_id = new_token() + new_token()
            pair = f"{CLIENT_COOKIES[1]}={new_id}"
            joined = f"{cookie_header}; {pair}" if cookie_header else pair
            scope = dict(scope)
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"cookie"] + [
                (b"cookie", joined.encode("latin-1"))
            ]
            cookie_header = joined
        path = unquote(scope.get("path", ""))
        marker = "/file="
        if self.enforce and scope["method"] in {"GET", "HEAD"} and marker in path:
            name = path.split(marker, 1)[1].rstrip("/").rsplit("/", 1)[-1]
            if not OWNERS.allowed(name, owner_from(_user(scope, cookie_header), cookie_header)):
                await _refuse(send, 404, "File not found.")
                return

        async def with_cookie(message):
            if new_id and message["type"] == "http.response.start":
                cookies = [
                    f"{CLIENT_COOKIES[0]}={new_id}; Path=/; HttpOnly; SameSite=None; Secure",
                    f"{CLIENT_COOKIES[1]}={new_id}; Path=/; HttpOnly; SameSite=Lax",
                ]
                extra = [(b"set-cookie", c.encode()) for c in cookies]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_cookie)


def _user(scope: dict, cookie_header: str | None) -> str | None:
    """The logged-in user of a request, from Gradio's own access-token cookie."""
    app = scope.get("app")
    tokens = getattr(app, "tokens", None)
    if not tokens or not getattr(app, "auth", None):
        return None
    cookie_id = getattr(app, "cookie_id", "")
    token = cookie_value(cookie_header, f"access-token-{cookie_id}") or cookie_value(
        cookie_header, f"access-token-unsecure-{cookie_id}"
    )
    return tokens.get(token) if token else None


def guard_middleware(limits: LimitsConfig) -> list[Middleware]:
    """The middlewares for ``launch(app_kwargs={"middleware": ...})``, outermost first."""
    return [
        Middleware(OwnedFiles, limits=limits),
        Middleware(LoginThrottle, limits=limits),
        Middleware(UploadQuota, limits=limits),
    ]
