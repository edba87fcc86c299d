"""The one streaming interface shared by the app, the command line and the evaluator.

An engine takes a query image, a normal template, a question (+ options, + category when known) and
yields `Update`s: the text so far, the seg cells parsed so far, the answer once known, and finally
one update with ``done=True``. Errors are data (``error``), never exceptions escaping ``stream``:
the app shows them next to the input and keeps serving other users. Cancellation is cooperative:
a ``threading.Event`` that the engine checks between tokens.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from judo.grid import Cell


@dataclass
class InspectionRequest:
    """One question about one query/template pair (images already loaded and validated)."""

    query: Image.Image
    template: Image.Image
    question: str
    options: dict[str, str] | None = None
    category: str | None = None
    dataset: str | None = None
    #: More golden samples of the product (the comparator's bank, with `template`); other engines
    #: show `template` only.
    bank: list[Image.Image] = field(default_factory=list)
    #: The comparator's threshold: a sensitivity factor (2 = twice as sensitive) and, for a
    #: calibrated bank, the false-alarm rate in false cells per good part. None = the defaults.
    sensitivity: float | None = None
    false_alarm_rate: float | None = None

    def __post_init__(self) -> None:
        self.question = (self.question or "").strip()
        if not self.question:
            raise ValueError("The question is empty: type a question or pick a preset.")
        if self.options is not None:
            cleaned = {str(k).strip().upper(): str(v).strip() for k, v in self.options.items()}
            self.options = {k: v for k, v in cleaned.items() if k and v} or None
        self.category = (self.category or "").strip() or None
        self.dataset = (self.dataset or "").strip() or None
        if self.sensitivity is not None and not (0 < float(self.sensitivity) <= 100):
            raise ValueError(f"The sensitivity must be a number above 0 (1 = default), got {self.sensitivity}.")
        if self.false_alarm_rate is not None and not (0 < float(self.false_alarm_rate) < 256):
            raise ValueError(
                f"The false-alarm rate must be above 0 and below 256 false cells per part, got {self.false_alarm_rate}."
            )


@dataclass
class Update:
    """What an engine knows at one moment of its stream (cumulative, not a delta)."""

    text: str = ""
    cells: set[Cell] = field(default_factory=set)
    answer: str | None = None
    done: bool = False
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    """Anything that streams inspection updates. ``available``/``reason`` say whether it can run."""

    id: str
    label: str
    available: bool
    reason: str | None

    def stream(
        self, request: InspectionRequest, stop_event: threading.Event | None = None
    ) -> Iterator[Update]: ...


@dataclass
class UnavailableEngine:
    """Stands in for an engine whose model could not be loaded: the app lists it with the reason."""

    id: str
    label: str
    reason: str
    available: bool = False
    kind: str = "unavailable"
    description: str = ""

    def stream(
        self, request: InspectionRequest, stop_event: threading.Event | None = None
    ) -> Iterator[Update]:
        yield Update(done=True, error=f"{self.label} is unavailable: {self.reason}")


@dataclass
class GenerationSettings:
    """Per-request decoding settings (the UI's "advanced" panel); None keeps the engine's default."""

    max_new_tokens: int | None = None
    do_sample: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
