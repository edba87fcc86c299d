"""The named endpoints ``/inspect`` and ``/compare``: what goes in and what comes out, by name.

A run takes a form (`InspectForm`, `CompareForm`) and yields views (`InspectView`, `CompareView`) whose
fields are named after the page's outputs. The field order of each form is the endpoint's parameter order
for gradio_client callers (`INSPECT_API`, `COMPARE_API`); the field order of each view is the order of
the values the endpoint returns (`INSPECT_OUTPUTS`, `COMPARE_OUTPUTS`). The page maps those names to its
components in one place (`by_component`); the thin endpoint functions here only give Gradio the
parameter names it shows on the "Use via API" page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import gradio as gr

if TYPE_CHECKING:
    from judo.app.runner import Runner

#: Most engines one comparison takes (one panel each).
MAX_COMPARE = 3

INSPECT_DESCRIPTION = (
    "Inspect a query image against a normal template of the same product with one engine. Options: one per "
    "line or on one line ('A. Yes. B. No.'); empty for a free question. The mask (white = defect) and the "
    "expected letter are optional ground truth. Returns the overlay, the visual prior, the model output, "
    "the answer, the status, the result (JSON), the record (JSON) and the overlay (PNG)."
)
COMPARE_DESCRIPTION = (
    "Run two or three engines on the same query and template, side by side. Returns, for each of three "
    "panels, the overlay, the model output and the answer; then the summary, the status and the result (JSON), "
    "and each engine's record (JSON) and overlay (PNG)."
)


@dataclass
class InspectForm:
    """What one inspection is asked with (values as the page or an API client sent them, unchecked)."""

    query: Any
    template: Any
    question: str | None = None
    options: str | None = None
    engine: str | None = None
    category: str | None = None
    mask: Any = None
    expected: str | None = None
    visual_prior: bool = False
    max_new_tokens: Any = 768
    do_sample: bool = False
    temperature: Any = 0.7
    top_p: Any = 0.9
    sensitivity: Any = 1.0


@dataclass
class CompareForm:
    """What a side-by-side comparison is asked with."""

    query: Any
    template: Any
    question: str | None = None
    options: str | None = None
    engines: list[str] | None = None
    category: str | None = None
    mask: Any = None
    expected: str | None = None
    max_new_tokens: Any = 768
    do_sample: bool = False
    temperature: Any = 0.7
    top_p: Any = 0.9


@dataclass
class InspectView:
    """Everything the Inspect tab shows of a run at one moment (every field, every time: see ShownFiles)."""

    overlay: str | None = None  # display-size PNG file
    visual_prior: str | None = None
    output_text: str = ""
    answer_html: str = ""
    status: str = ""
    result: dict[str, Any] | None = None
    record: str | None = None  # downloads, on the final view only
    overlay_png: str | None = None

    def values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class PanelView:
    """One engine's panel of a comparison."""

    overlay: str | None = None
    text: str = ""
    answer: str = ""


@dataclass
class CompareView:
    """Everything the Compare tab shows at one moment; panels beyond the engines compared stay empty."""

    panels: list[PanelView] = field(default_factory=list)
    summary: str = ""
    status: str = ""
    result: dict[str, Any] | None = None
    files: list[str] | None = None

    def values(self) -> dict[str, Any]:
        panels = [*self.panels, *(PanelView() for _ in range(MAX_COMPARE - len(self.panels)))]
        out: dict[str, Any] = {}
        for i, panel in enumerate(panels):
            out.update({f"{name}_{i}": value for name, value in asdict(panel).items()})
        return out | {
            "summary": self.summary,
            "status": self.status,
            "result": self.result,
            "files": self.files,
        }


INSPECT_API = tuple(f.name for f in fields(InspectForm))
COMPARE_API = tuple(f.name for f in fields(CompareForm))
INSPECT_OUTPUTS = tuple(InspectView().values())
COMPARE_OUTPUTS = tuple(CompareView().values())


def by_component(values: dict[str, Any], components: dict[str, Any]) -> dict[Any, Any]:
    """A view's values keyed by the page's components (Gradio's dict return), every output present."""
    return {components[name]: value for name, value in values.items()}


def inspect_endpoint(runner: Runner, outputs: dict[str, Any]) -> Callable[..., Iterator[dict]]:
    """The ``/inspect`` handler: parameters named (and ordered) as `INSPECT_API`, views by component."""

    def inspect(
        query,
        template,
        question=None,
        options=None,
        engine=None,
        category=None,
        mask=None,
        expected=None,
        visual_prior=False,
        max_new_tokens=768,
        do_sample=False,
        temperature=0.7,
        top_p=0.9,
        sensitivity=1.0,
        request: gr.Request = None,
    ) -> Iterator[dict]:
        form = InspectForm(
            query=query,
            template=template,
            question=question,
            options=options,
            engine=engine,
            category=category,
            mask=mask,
            expected=expected,
            visual_prior=visual_prior,
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            temperature=temperature,
            top_p=top_p,
            sensitivity=sensitivity,
        )
        for view in runner.inspect(form, request):
            yield by_component(view.values(), outputs)

    return inspect


def compare_endpoint(runner: Runner, outputs: dict[str, Any]) -> Callable[..., Iterator[dict]]:
    """The ``/compare`` handler: parameters named (and ordered) as `COMPARE_API`, views by component."""

    def compare(
        query,
        template,
        question=None,
        options=None,
        engines=None,
        category=None,
        mask=None,
        expected=None,
        max_new_tokens=768,
        do_sample=False,
        temperature=0.7,
        top_p=0.9,
        request: gr.Request = None,
    ) -> Iterator[dict]:
        form = CompareForm(
            query=query,
            template=template,
            question=question,
            options=options,
            engines=engines,
            category=category,
            mask=mask,
            expected=expected,
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            temperature=temperature,
            top_p=top_p,
        )
        for view in runner.compare(form, request):
            yield by_component(view.values(), outputs)

    return compare
