"""Serving the app: launch arguments (upload cap, login, css, the keyboard shortcut, the abuse limits),
`create_app`, where to serve and whether that port is free, and `judo app` (`main`)."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from judo.app.guard import guard_middleware
from judo.app.layout import build_demo
from judo.app.runner import RecordHook
from judo.app.state import AppState
from judo.engines import AppConfig, Engine, load_config
from judo.engines.config import ConfigError

log = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parents[2] / "assets"
#: Ctrl+Enter (Cmd+Enter on a Mac) anywhere on the page runs Inspect while the Inspect tab is shown.
#: Keys that move the sensitivity slider end as a drag ends: Gradio's slider says "release" only on
#: pointer-up, so without this the slider would show a value the shown result was not thresholded at.
KEYBOARD_SCRIPT = """<script>
document.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey) || event.repeat) return;
  const run = document.querySelector("#judo-run");
  if (!run || run.offsetParent === null || run.disabled) return;  // another tab is shown
  event.preventDefault();
  run.click();
});
const SLIDER_KEYS = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "PageUp", "PageDown", "Home", "End"];
document.addEventListener("keyup", (event) => {
  const input = event.target;
  if (!SLIDER_KEYS.includes(event.key) || !(input instanceof HTMLInputElement) || input.type !== "range") return;
  if (!input.closest("#judo-sensitivity")) return;
  input.dispatchEvent(new PointerEvent("pointerup", { bubbles: true }));
});
</script>"""


# ------------------------------------------------------------------------------------- launch
def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    """JUDO_AUTH: 'user:password', or a file with one 'user:password' per line ('#' comments)."""
    if not value:
        return None
    path = Path(os.path.expanduser(value))
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else [value]
    pairs = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise ConfigError("JUDO_AUTH must be 'user:password' or a file of such lines")
        pairs.append((user, password))
    return pairs or None


def launch_kwargs(config: AppConfig) -> dict[str, Any]:
    """Arguments for demo.launch(): upload cap, auth, css, the keyboard shortcut, narrow allowed paths, the
    abuse limits (`judo.app.guard`, as middleware of Gradio's own FastAPI app)."""
    allowed = [
        p
        for p in (
            config.templates.examples_dir,
            config.templates.golden_dir,
            config.templates.mmad_root,
            *config.templates.golden.values(),
        )
        if p
    ]
    css_path = ASSETS / "judo.css"
    kwargs: dict[str, Any] = {
        "max_file_size": config.queue.max_file_size,
        "allowed_paths": allowed,
        "show_error": True,
        "ssr_mode": False,
        "css": css_path.read_text(encoding="utf-8") if css_path.is_file() else None,
        "head": KEYBOARD_SCRIPT,
        "theme": gr.themes.Soft(primary_hue="red"),
        "app_kwargs": {"middleware": guard_middleware(config.limits)},
    }
    auth = parse_auth(config.auth)
    if auth:
        kwargs["auth"] = auth
        kwargs["auth_message"] = "JUDO Inspector: sign in with your lab account."
    return kwargs


def create_app(
    config: AppConfig | None = None,
    gpu: Callable | None = None,
    engines: list[Engine] | None = None,
    on_record: RecordHook | None = None,
) -> tuple[gr.Blocks, dict[str, Any]]:
    """Load the configuration and the models, build the page; return (demo, launch kwargs). ``on_record``
    is told of every finished inspection (`judo.app.runner.RecordHook`)."""
    config = config or load_config()
    state = AppState.load(config, engines, on_record)
    for e in state.engines:
        log.info("engine %-16s %s", e.id, "ready" if e.available else f"UNAVAILABLE: {e.reason}")
    return build_demo(state, gpu), launch_kwargs(config)


def serve_address(host: str | None = None, port: int | None = None) -> tuple[str, int]:
    """Where to serve: the arguments, else GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, else 127.0.0.1:7860."""
    host = host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    if port is None:
        text = os.environ.get("GRADIO_SERVER_PORT", "").strip() or "7860"
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise ConfigError(f"GRADIO_SERVER_PORT must be a port number 1-65535 (got {text!r}).")
        port = int(text)
    return host, port


def port_problem(host: str, port: int) -> str | None:
    """None when ``host:port`` can be served, else the sentence saying why not (checked before any model loads,
    and the port is then given to Gradio explicitly, so it never moves to another one)."""
    if not 0 < port < 65536:
        return f"port {port} is not a port number (1-65535)."
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as err:
            if err.errno == 98:  # EADDRINUSE
                return (
                    f"port {port} on {host} is already in use: stop the other server or choose another "
                    "port (GRADIO_SERVER_PORT, or judo app --port)."
                )
            return f"cannot serve on {host}:{port} ({err.strerror or err})."
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judo app", description="Serve the JUDO inspection app.")
    parser.add_argument("--config", help="YAML file (default: $JUDO_CONFIG or configs/app.yaml)")
    parser.add_argument("--host", default=None, help="interface (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        host, port = serve_address(args.host, args.port)
        problem = port_problem(host, port)
        if problem:
            raise ConfigError(problem)
        demo, kwargs = create_app(config)
    except ConfigError as err:
        print(f"judo app: {err}", file=sys.stderr)
        return 2
    demo.launch(server_name=host, server_port=port, **kwargs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
