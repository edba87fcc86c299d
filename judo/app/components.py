"""Component helpers for the page: uploads handed over unopened, slider values unchecked (the app checks
them itself, in one sentence), the token slider fitted to the engine, the engine choices."""

from __future__ import annotations

from typing import Any

import gradio as gr

from judo.engines import Engine
from judo.generation import DEFAULT_MAX_NEW_TOKENS

SLIDER_MAX_TOKENS = 2048  # the slider's top for an engine without a token budget of its own


class RawImage(gr.Image):
    """An image input handed to the handler as the stored file path, unopened.

    Gradio's Image.preprocess opens every upload with PIL first, so a non-image or a decompression
    bomb would fail inside Gradio with a generic error. Every image must go through
    `judo.images.load_image` instead, which answers bad input with one clear sentence.
    A class, not a patched instance: when a handler updates a component's settings Gradio rebuilds the
    session's copy from the class (`block.__class__(**kwargs)`), and the copy must keep this rule.
    """

    is_template = True  # drawn by the frontend as Gradio's own Image

    def preprocess(self, payload: Any) -> Any:
        if payload is None:
            return None
        path = getattr(payload, "path", None)
        if path:
            return str(path)
        return super().preprocess(payload)  # data: URLs (pasted images) are decoded by Gradio


class RawSlider(gr.Slider):
    """A slider whose value reaches the handler as sent: `judo.app.inputs.settings_from` checks it and
    says what is wrong in one sentence (Gradio's own check fails on a non-number with an internal error).
    A class for the reason RawImage is one: the token slider is refitted per engine (`token_slider`)."""

    is_template = True  # drawn by the frontend as Gradio's own Slider

    def preprocess(self, payload: Any) -> Any:
        return payload


def token_slider(engine: Engine | None, value: Any = None) -> dict[str, Any]:
    """The max-new-tokens slider's settings for ``engine``: it goes up to the engine's own cap (a longer
    budget would be cut there without a word) and says so; ``value`` is kept when it fits."""
    try:
        wanted = int(float(value)) if value not in (None, "") else DEFAULT_MAX_NEW_TOKENS
    except (TypeError, ValueError):
        wanted = DEFAULT_MAX_NEW_TOKENS
    cap = getattr(engine, "max_new_tokens", None)
    if not isinstance(cap, int) or cap <= 0:
        return {
            "minimum": 16,
            "maximum": SLIDER_MAX_TOKENS,
            "value": min(max(wanted, 16), SLIDER_MAX_TOKENS),
            "info": "Not used by this engine: it generates no text." if engine is not None else None,
        }
    label = getattr(engine, "label", "this engine")
    return {
        "minimum": min(16, cap),
        "maximum": cap,
        "value": min(max(wanted, 1), cap),
        "info": f"{label} stops at {cap} tokens (its configured limit).",
    }


def engine_choices(engines: list[Engine]) -> list[tuple[str, str]]:
    return [(e.label if e.available else f"{e.label} (unavailable)", e.id) for e in engines]
