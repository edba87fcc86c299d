"""The one engine contract shared by the app, `judo inspect` and `judo eval`.

An engine takes a query image, normal template(s), a question (+ options, + category when known) and
yields `Update`s: the text so far, the seg cells parsed so far, the answer once known, and finally
one update with ``done=True``. Cancellation is cooperative: a ``threading.Event`` that the engine
checks between tokens. Decoding settings are a `transformers.GenerationConfig` (None: the engine's).

Callers never iterate ``stream`` directly: `Engine.run` is the guarded stream (errors become a final
update with ``error``, never exceptions, and there is exactly one final update), and
`Engine.answer_batch` answers several requests at once (the evaluator; engines that batch override it).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PIL import Image

from judo.grid import Cell
from judo.inputs import check_options, check_question

if TYPE_CHECKING:
    from transformers import GenerationConfig


@dataclass
class InspectionRequest:
    """One question about a query and its normal template(s) (images already loaded and validated).

    ``template`` is one image or a list (several normals: the first is the one shown, and engines that
    use a bank compare against all of them); `templates` always gives the list.
    """

    query: Image.Image
    template: Image.Image | list[Image.Image]
    question: str
    options: dict[str, str] | None = None
    category: str | None = None
    dataset: str | None = None
    #: The comparator's threshold: a sensitivity factor (2 = twice as sensitive) and, for a
    #: calibrated bank, the false-alarm rate in false cells per good part. None = the defaults.
    sensitivity: float | None = None
    false_alarm_rate: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.template, (list, tuple)):
            if not self.template:
                raise ValueError("No normal template: give at least one good image of the same product.")
            self.templates = list(self.template)
            self.template = self.templates[0]
        else:
            self.templates = [self.template]
        self.question = check_question(self.question)
        self.options = check_options(self.options)
        self.category = (self.category or "").strip() or None
        self.dataset = (self.dataset or "").strip() or None
        if self.sensitivity is not None and not (0 < float(self.sensitivity) <= 100):
            raise ValueError(
                f"The sensitivity must be a number above 0 (1 = default), got {self.sensitivity}."
            )
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
    #: What a measuring engine's answer was derived from (the comparator's ComparisonResult, on its final
    #: update): kept so the app can re-threshold the shown result without a new run. Never serialised.
    measurement: Any = field(default=None, repr=False, compare=False)


class Engine(ABC):
    """Anything that answers inspection requests. ``available``/``reason`` say whether it can run."""

    id: str
    label: str
    kind: str
    description: str = ""
    available: bool = True
    reason: str | None = None

    @abstractmethod
    def stream(
        self,
        request: InspectionRequest,
        stop_event: threading.Event | None = None,
        settings: GenerationConfig | None = None,
    ) -> Iterator[Update]:
        """The engine's own updates; callers use `run`, which guards them."""

    def run(
        self,
        request: InspectionRequest,
        stop_event: threading.Event | None = None,
        settings: GenerationConfig | None = None,
    ) -> Iterator[Update]:
        """`stream`, guarded: never raises, always ends with exactly one ``done`` update."""
        last = Update()
        try:
            for update in self.stream(request, stop_event, settings):
                last = update
                yield update
                if update.done:
                    return
        except Exception as err:  # noqa: BLE001 - a crash is reported as data, the server keeps serving
            yield Update(
                text=last.text,
                cells=last.cells,
                done=True,
                error=f"{self.label} failed: {type(err).__name__}: {err}",
                meta=last.meta,
            )
            return
        stopped = stop_event is not None and stop_event.is_set()
        meta = {**last.meta, "stopped": True} if stopped else last.meta
        yield Update(text=last.text, cells=last.cells, answer=last.answer, done=True, meta=meta)

    def answer(
        self,
        request: InspectionRequest,
        stop_event: threading.Event | None = None,
        settings: GenerationConfig | None = None,
    ) -> Update:
        """The final update of `run`."""
        last = Update()
        for last in self.run(request, stop_event, settings):  # noqa: B007 - the last one is the answer
            pass
        return last

    def answer_batch(
        self, requests: list[InspectionRequest], settings: GenerationConfig | None = None
    ) -> list[Update]:
        """Final updates for several requests, in order (one by one here; batching engines override)."""
        return [self.answer(request, None, settings) for request in requests]


class UnavailableEngine(Engine):
    """Stands in for an engine whose model could not be loaded: the app lists it with the reason."""

    kind = "unavailable"
    available = False

    def __init__(self, id: str, label: str, reason: str, description: str = "") -> None:
        self.id, self.label, self.reason, self.description = id, label, reason, description

    def stream(
        self,
        request: InspectionRequest,
        stop_event: threading.Event | None = None,
        settings: GenerationConfig | None = None,
    ) -> Iterator[Update]:
        yield Update(done=True, error=f"{self.label} is unavailable: {self.reason}")
