"""The machinery of a streamed run: Stop per browser session, paced refreshes, a ticking clock.

None of it draws or validates: `judo.app.runner` uses it to stream an engine's updates to the page.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import gradio as gr

from judo.app.inputs import hide_paths
from judo.engines.base import Update

#: Largest share of a run's time spent handing streamed updates to Gradio (see `Pacer`).
UPDATE_BUDGET = 0.05
#: How often the status clock moves while the engine is silent (loading, prefill).
TICK_S = 0.5


# ----------------------------------------------------------------------------------------- stops
class StopRegistry:
    """One stop event per browser session: the Stop button sets it, the running engine sees it.

    Inspect arms the session's event the moment it is pressed (`arm`, before the run waits in the
    queue), so a Stop pressed before the run has begun still reaches it: the run then ends at once with
    a record that says it was stopped.
    """

    def __init__(self) -> None:
        self._events: dict[str, threading.Event] = {}
        self._started: set[int] = set()  # ids of the events a run has taken
        self._lock = threading.Lock()

    def arm(self, session: str) -> None:
        with self._lock:
            event = self._events.get(session)
            if event is None or id(event) not in self._started:  # a running run keeps its event
                self._events[session] = threading.Event()

    def start(self, session: str) -> threading.Event:
        """The run's stop event: the armed one (Stop may have set it already), else a fresh one."""
        with self._lock:
            event = self._events.get(session)
            if event is None or id(event) in self._started:
                event = self._events[session] = threading.Event()
            self._started.add(id(event))
        return event

    def stop(self, session: str) -> bool:
        with self._lock:
            event = self._events.get(session)
        if event is None:
            return False
        event.set()
        return True

    def finish(self, session: str, event: threading.Event) -> None:
        with self._lock:
            self._started.discard(id(event))
            if self._events.get(session) is event:
                del self._events[session]


STOPS = StopRegistry()


def session_of(request: gr.Request | None) -> str:
    return (getattr(request, "session_hash", None) or "api") if request is not None else "api"


class Pacer:
    """When the next text refresh of a stream is due.

    At most one every ``interval`` s, and never more often than keeps the time spent handing updates
    to Gradio under `UPDATE_BUDGET` of the run: Gradio resumes the handler only once it has processed
    the previous update, so that pause is the update's cost, and it grows on a busy server (each
    update hops between threads, which wait for the interpreter lock held by generation). Cell and
    answer changes are not paced; the final update never waits; the text refreshes at least every
    ``longest`` s, so one slow update (a garbage collection) does not freeze the page.
    """

    def __init__(self, interval: float, longest: float = 0.5) -> None:
        self.interval = interval
        self.longest = max(interval, longest)
        self.gap = interval
        self.last = time.perf_counter()

    def due(self, now: float) -> bool:
        return now - self.last >= self.gap

    def sent(self, started: float) -> None:
        """Call when the handler resumes after an update yielded at ``started``."""
        self.last = started
        cost = time.perf_counter() - started
        self.gap = min(self.longest, max(self.interval, cost / UPDATE_BUDGET))


def ticking(updates: Iterator[Update], every_s: float) -> Iterator[Update | None]:
    """``updates``, read in a worker thread, with a ``None`` whenever ``every_s`` passes without one
    (so a caller can refresh a clock while an engine loads or prefills). The engine's own stop event
    ends the worker; an exception in it is raised here."""
    events: queue.Queue = queue.Queue()
    end = object()

    def work() -> None:
        try:
            for update in updates:
                events.put(update)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            events.put(err)
        events.put(end)

    threading.Thread(target=work, daemon=True, name="judo-engine-stream").start()
    while True:
        try:
            item = events.get(timeout=every_s)
        except queue.Empty:
            yield None
            continue
        if item is end:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def stopped_before_start() -> Update:
    """The final update of a run that Stop ended before its engine began."""
    return Update(
        done=True, meta={"stopped": True, "warnings": ["Stopped by the user before the engine started."]}
    )


def public(updates: Iterator[Update]) -> Iterator[Update]:
    """An engine's updates as the page and the record show them: no server path in an error."""
    for update in updates:
        if update.error:
            update.error = hide_paths(update.error)
        yield update
