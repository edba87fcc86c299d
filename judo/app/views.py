"""What the page says, as HTML and Markdown: the answer list, the status line with its folded warnings,
the result JSON, the compare summary, and the Engines tab. Pure functions of their arguments."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from judo.app.inputs import hide_paths
from judo.engines.base import Engine, Update
from judo.engines.config import ENV_HELP
from judo.grid import seg_iou

if TYPE_CHECKING:
    from judo.app.state import AppState


def answer_html(
    update: Update | None,
    options: dict[str, str] | None,
    expected: str | None = None,
    title: str | None = None,
) -> str:
    """The options as a list with the chosen one highlighted (and the expected one marked, if known)."""
    head = f"<div class='judo-answer-title'>{html.escape(title, quote=False)}</div>" if title else ""
    if update is None:
        return head + "<div class='judo-answer judo-pending'>No answer yet.</div>"
    chosen = update.answer
    if not options:
        body = html.escape(chosen or "—", quote=False)
        return head + f"<div class='judo-answer'><span class='judo-chosen'>{body}</span></div>"
    rows = []
    for letter, text in options.items():
        cls = ["judo-option"]
        if letter == chosen:
            cls.append("judo-chosen")
        mark = ""
        if expected:
            if letter == expected:
                cls.append("judo-expected")
                mark = " ✓ correct" if letter == chosen else " (correct)"
            elif letter == chosen:
                mark = " ✗"
        rows.append(
            f"<li class='{' '.join(cls)}'><b>{letter}.</b> {html.escape(text, quote=False)}{mark}</li>"
        )
    status = ""
    if update.done and chosen is None:
        status = "<div class='judo-pending'>No option chosen.</div>"
    elif not update.done and chosen is None:
        status = "<div class='judo-pending'>Waiting for &lt;answer&gt;…</div>"
    return head + f"<ul class='judo-answer'>{''.join(rows)}</ul>{status}"


def status_markdown(
    engine_label: str,
    update: Update | None,
    notes: list[str],
    metrics: dict | None,
    elapsed: float,
    running: bool,
    stopping: bool = False,
) -> str:
    lines = []
    label = html.escape(engine_label, quote=False)
    if running:
        lines.append(
            f"**{label}** is stopping… {elapsed:.1f} s"
            if stopping
            else f"**{label}** is running… {elapsed:.1f} s"
        )
    elif update is not None and update.error:
        lines.append(f"**Error:** {html.escape(update.error, quote=False)}")
    else:
        meta = update.meta if update else {}
        verb = "stopped by the user after" if meta.get("stopped") else "finished in"
        parts = [f"**{label}** {verb} {elapsed:.2f} s"]
        if meta.get("first_token_s") is not None:
            parts.append(f"first token {meta['first_token_s']:.2f} s")
        if meta.get("new_tokens"):
            parts.append(f"{meta['new_tokens']} tokens")
        if meta.get("tokens_per_s"):
            parts.append(f"{meta['tokens_per_s']:.1f} tok/s")
        lines.append(" · ".join(parts))
    if metrics:
        lines.append(
            f"Truth (green) vs prediction (red): patch F1 **{metrics['patch_f1']:.2f}**, "
            f"IoU **{metrics['patch_iou']:.2f}** ({metrics['predicted_cells']} predicted, "
            f"{metrics['truth_cells']} true cells)"
        )
    meta = update.meta if update else {}
    if meta.get("knowledge_summary"):
        lines.append(html.escape(meta["knowledge_summary"], quote=False))
    warnings = list(dict.fromkeys(hide_paths(str(w)) for w in [*notes, *(meta.get("warnings") or [])]))
    if warnings:
        lines.append(warnings_markdown(meta.get("headline") or warnings[0], warnings))
    return "\n\n".join(lines)


def warnings_markdown(headline: str, warnings: list[str]) -> str:
    """One warning line (the headline) and, folded under it, every warning in full."""
    head = f"⚠ {html.escape(headline, quote=False)}"
    if warnings == [headline]:
        return head
    items = "".join(f"<li>{html.escape(w, quote=False)}</li>" for w in warnings)
    return f"{head}\n\n<details><summary>All warnings ({len(warnings)})</summary><ul>{items}</ul></details>"


def result_json(update: Update, metrics: dict | None, engine: str) -> dict[str, Any]:
    return {
        "engine": engine,
        "done": update.done,
        "stopped": bool(update.meta.get("stopped")),
        "answer": update.answer,
        "cells": sorted([list(c) for c in update.cells]),
        "error": update.error,
        "warnings": update.meta.get("warnings", []),
        "truth": metrics,
        **({"comparator": update.meta["comparator"]} if "comparator" in update.meta else {}),
    }


def disagreement_summary(labels: list[str], updates: list[Update], options: dict[str, str] | None) -> str:
    """One line: do the engines agree on the answer, and how much do their segmentations overlap?"""
    answers = [u.answer for u in updates]
    named = ", ".join(f"{lab} → {a or '—'}" for lab, a in zip(labels, answers))
    if any(u.error for u in updates):
        failed = [lab for lab, u in zip(labels, updates) if u.error]
        head = f"{', '.join(failed)} failed; "
    else:
        head = ""
    if len(set(answers)) == 1 and answers[0] is not None:
        text = (options or {}).get(answers[0], "")
        head += f"All agree on {answers[0]}{(' (' + text + ')') if text else ''}"
    else:
        head += f"Answers differ: {named}"
    pairs = []
    for i in range(len(updates)):
        for j in range(i + 1, len(updates)):
            a, b = updates[i].cells, updates[j].cells
            if a or b:
                pairs.append(f"{labels[i]}/{labels[j]} {seg_iou(a, b):.2f}")
    seg = ("; segmentation IoU " + ", ".join(pairs)) if pairs else "; no engine marked any cell"
    return head + seg + "."


def compare_needs_two(available: list[Engine]) -> str:
    """What the Compare tab says when fewer than two engines can run: why, and how to add one."""
    have = ", ".join(f"**{e.label}**" for e in available) or "no engine"
    return (
        f"Compare runs two or three engines on the same pair, side by side; this server has only {have} ready.\n\n"
        "To add one, the operator lists another engine under `engines:` in the app's configuration file (for "
        "instance a language model with its `checkpoint:`) and restarts the app. The **Engines** tab says why a "
        "listed engine is unavailable, and, on the server itself, which environment variables override the file."
    )


def engines_markdown(state: AppState, private: bool = False) -> str:
    """The Engines tab. Server paths and the configuration (file, environment overrides) are for the
    operator only (``private``: a login is configured, or the page is opened on the server itself)."""
    shown = (lambda text: text) if private else hide_paths
    lines = ["| Engine | Status | Notes |", "|---|---|---|"]
    for e in state.engines:
        status = "ready" if e.available else "unavailable"
        notes = e.reason if not e.available else (getattr(e, "description", "") or "")
        lines.append(f"| {e.label} | {status} | {shown(notes or '').replace('|', '/')} |")
    if state.records_problem:
        lines += ["", "**Records:** the records folder is not writable: inspections run, downloads are off."]
    if state.library.notes:
        lines += ["", "**Template library:**"] + [f"- {shown(n)}" for n in state.library.notes]
    if not private:
        lines += [
            "",
            "The server's configuration is shown when signed in, or on the server itself (localhost).",
        ]
        return "\n".join(lines)
    lines += ["", "**Configuration** (`" + (state.config.source or "") + "`), environment overrides:"]
    lines += [f"- `{k}`: {v}" for k, v in ENV_HELP.items()]
    return "\n".join(lines)


def legend_html(heat: bool, comparator: bool, note: str | None = None) -> str:
    """What the colours of the shown picture mean: the heat map's scale (``heat``: 0.5 of it is the
    threshold) and the marks the picture carries: red anomalous and amber dashed borderline cells
    (``comparator``: only a measurement has a threshold to be near; not on the heat map, which draws no
    cells) and the green truth outline; ``note``: one line more (why a view is not available)."""
    from judo.render import AMBER, GREEN, HEAT_ANCHORS, RED

    def rgb(c: tuple[int, int, int]) -> str:
        return f"rgb({c[0]},{c[1]},{c[2]})"

    parts = []
    if heat:
        stops = ", ".join(
            f"{rgb(c)} {round(100 * i / (len(HEAT_ANCHORS) - 1))}%" for i, c in enumerate(HEAT_ANCHORS)
        )
        parts.append(
            "<div class='judo-legend-heat' style='max-width:420px'>"
            f"<div class='judo-legend-bar' style='height:12px;border-radius:3px;background:linear-gradient(to right, {stops})'>"
            "</div><div style='display:flex;justify-content:space-between;font-size:0.85em'>"
            "<span>below threshold</span><span>threshold</span><span>strong (2x)</span></div></div>"
        )
    box = "display:inline-block;width:14px;height:14px;vertical-align:middle;margin:0 4px 0 10px;"
    red = "anomalous cell" if comparator else "cell the model marked"
    marks = [] if heat else [f"<span style='{box}background:{rgb(RED)};opacity:0.6'></span>{red}"]
    if comparator and not heat:  # the heat map draws no cells: only what it shows is named
        marks.append(
            f"<span style='{box}background:rgba({AMBER[0]},{AMBER[1]},{AMBER[2]},0.35);"
            f"border:2px dashed {rgb(AMBER)}'></span>borderline cell (near the threshold)"
        )
    marks.append(f"<span style='{box}border:2px solid {rgb(GREEN)}'></span>truth (mask)")
    parts.append(f"<div class='judo-legend-marks' style='font-size:0.85em'>{''.join(marks)}</div>")
    if note:
        parts.append(
            f"<div class='judo-legend-note' style='font-size:0.85em'>{html.escape(note, quote=False)}</div>"
        )
    return f"<div class='judo-legend'>{''.join(parts)}</div>"
