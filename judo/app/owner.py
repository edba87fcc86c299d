"""Who is asking: who may fetch which file the app wrote (records and overlays go only to the session or
user that made them), and who may see the server's details (`is_operator`).

Gradio serves every file it has cached to anyone who asks for its URL. The files the app writes for
one inspection (the record JSON, the overlay PNG, the pictures streamed while it runs) carry a random
token in their name, and `OWNERS` remembers which requester made each name; `judo.app.guard.OwnedFiles`
answers any other requester "not found". The requester is the logged-in user when a login is on,
else the browser (or API client) holding the ``judo-client`` cookie the app hands out.
"""

from __future__ import annotations

import secrets
import threading
import time
from http.cookies import SimpleCookie
from typing import Any

#: The cookie naming one browser (or API client) when there is no login. Set twice, as Gradio sets its own
#: sign-in cookie: ``SameSite=None; Secure`` (sent from an embedding page over https, e.g. a Space shown
#: on huggingface.co) and an ``-unsecure`` copy with ``SameSite=Lax`` for plain http (a lab network).
CLIENT_COOKIE = "judo-client"
CLIENT_COOKIES = (CLIENT_COOKIE, f"{CLIENT_COOKIE}-unsecure")
#: How long a name is remembered; far longer than the records are kept on disk (judo.app.downloads).
KEEP_S = 6 * 3600.0


def new_token() -> str:
    """A random part for a file name: unguessable, safe in URLs and on every file system."""
    return secrets.token_hex(8)


def owner_from(username: str | None, cookie_header: str | None) -> str | None:
    """The requester: ``user:<name>`` when logged in, else ``client:<cookie>``, else None."""
    if username:
        return f"user:{username}"
    value = client_id(cookie_header)
    return f"client:{value}" if value else None


def client_id(cookie_header: str | None) -> str | None:
    """The ``judo-client`` value of a Cookie header (either copy), or None."""
    return next((v for v in (cookie_value(cookie_header, n) for n in CLIENT_COOKIES) if v), None)


def cookie_value(header: str | None, name: str) -> str | None:
    if not header:
        return None
    jar = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # noqa: BLE001 - a malformed Cookie header names nobody
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None and morsel.value else None


def owner_of_request(request: Any) -> str | None:
    """The owner for a Gradio handler's ``gr.Request`` (None outside a served request)."""
    if request is None:
        return None
    username = getattr(request, "username", None)
    try:
        headers = request.headers
        cookie = headers.get("cookie") if headers is not None else None
    except Exception:  # noqa: BLE001 - a request built without headers
        cookie = None
    return owner_from(username, cookie)


class FileOwners:
    """File name -> owner, for the names the app wrote; names it did not write are nobody's business here."""

    def __init__(self, keep_s: float = KEEP_S) -> None:
        self.keep_s = keep_s
        self._owners: dict[str, tuple[str | None, float]] = {}
        self._lock = threading.Lock()

    def claim(self, name: str, owner: str | None) -> None:
        now = time.time()
        with self._lock:
            self._owners[name] = (owner, now)
            if len(self._owners) % 256 == 0:
                cutoff = now - self.keep_s
                self._owners = {k: v for k, v in self._owners.items() if v[1] >= cutoff}

    def allowed(self, name: str, requester: str | None) -> bool:
        """True for names the app did not register, and for the owner's own files."""
        with self._lock:
            entry = self._owners.get(name)
        if entry is None:
            return True
        return entry[0] is not None and entry[0] == requester


OWNERS = FileOwners()


LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


def is_operator(request: Any, auth_configured: bool) -> bool:
    """True when the visitor may see server details: a login is configured (every visitor signed in), or
    the page is opened on the server itself (a loopback client asking for a loopback host name, so a
    reverse proxy on the same machine, which forwards a public host name, does not count)."""
    if auth_configured:
        return True
    if request is None:
        return False
    client = getattr(request, "client", None)
    try:
        host_header = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
    except Exception:  # noqa: BLE001 - a request built without headers
        return False
    forwarded = any(request.headers.get(h) for h in ("x-forwarded-for", "x-forwarded-host", "forwarded"))
    return getattr(client, "host", None) in LOOPBACK_HOSTS and host_header in LOOPBACK_HOSTS and not forwarded
