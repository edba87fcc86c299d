"""Qwen2.5-VL engine: the JUDO prompt in, a parsed stream of seg cells, reasoning and answer out.

The same class serves JUDO, Base GRPO and Base GRPO + RAG: they differ only in checkpoint and in
whether domain knowledge goes into the prompt (`judo.engines.rag`). Prompting, generation and
parsing are the project's shared pieces (`judo.prompts`, `judo.generation`, `judo.response`), so
what the app shows is exactly what training rewarded and evaluation scores.

Robustness: output is bounded by ``max_new_tokens`` and a wall-clock limit; a caller's stop event
ends generation at the next token; malformed, cut-off or out-of-range output is reported as
warnings on the final update rather than raised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from PIL import Image
from transformers import GenerationConfig

from judo.engines.base import Engine, InspectionRequest, Update
from judo.engines.rag import KnowledgeBase
from judo.generation import capped, decoding, decoding_fields


class QwenEngine(Engine):
    """Streams a Qwen2.5-VL model's answer to one inspection request; answers batches in one pass."""

    kind = "qwen"

    def __init__(
        self,
        id: str,
        label: str,
        model: Any,
        processor: Any,
        *,
        knowledge: KnowledgeBase | None = None,
        prompt_style: str = "judo",
        defaults: GenerationConfig | None = None,
        max_seconds: float = 300.0,
        max_prompt_tokens: int | None = None,
        checkpoint: str | None = None,
        description: str = "",
    ) -> None:
        self.id, self.label = id, label
        self.model, self.processor = model, processor
        self.knowledge = knowledge
        self.prompt_style = prompt_style
        self.defaults = defaults or decoding()
        self.max_seconds = max_seconds
        self.max_prompt_tokens = max_prompt_tokens
        self.checkpoint = checkpoint
        self.description = description

    @property
    def max_new_tokens(self) -> int:
        """This engine's token cap (its configured budget): a request may ask for less, never more."""
        return int(self.defaults.max_new_tokens)

    def settings(self, override: GenerationConfig | None = None) -> GenerationConfig:
        """``override`` (the request's decoding) or the engine's defaults, capped at the engine's budget."""
        return capped(override if override is not None else self.defaults, self.max_new_tokens)

    def _prompt(
        self,
        request: InspectionRequest,
        s: GenerationConfig,
        fit: Callable[[Image.Image], Image.Image] | None = None,
    ) -> tuple[Any, dict[str, Any], list[str]]:
        """The prompt of one request (knowledge looked up when the engine has some), its meta and warnings.

        ``fit`` may hand over pictures already at the model's size (a batch shares them)."""
        from judo.prompts import inspection_prompt

        fit = fit or (lambda image: image)
        meta: dict[str, Any] = {
            "engine": self.id,
            "label": self.label,
            "checkpoint": self.checkpoint,
            "prompt_style": self.prompt_style,
            "settings": decoding_fields(s),
            **self.backend_meta(),
        }
        warnings: list[str] = []
        hit = None
        if self.knowledge is not None:
            try:
                hit = self.knowledge.lookup(request)
            except Exception as err:  # retrieval is an aid: answer without it rather than fail
                warnings.append(f"Domain knowledge could not be retrieved ({err}); answering without it.")
            if hit is not None:
                meta["knowledge"] = hit.as_meta()
                meta["knowledge_summary"] = hit.summary()
        prompt = inspection_prompt(
            fit(request.query),
            [fit(t) for t in request.templates],
            request.question,
            request.options,
            knowledge=hit.text if hit else None,
            style=self.prompt_style,
        )
        return prompt, meta, warnings

    def answer_batch(
        self, requests: list[InspectionRequest], settings: GenerationConfig | None = None
    ) -> list[Update]:
        """All requests in one left-padded greedy batch; each final update is what `run` would end with."""
        from judo.generation import generate_batch
        from judo.response import StreamParser

        t0 = time.perf_counter()
        s = self.settings(settings)
        fit = _model_size_once()  # a batch asks several questions about the same pictures
        out: list[Update | None] = [None] * len(requests)
        ready = []
        for i, request in enumerate(requests):
            try:
                ready.append((i, *self._prompt(request, s, fit)))
            except Exception as err:  # noqa: BLE001 - one bad request must not sink the batch
                out[i] = Update(
                    done=True,
                    error=f"Could not build the prompt: {err}",
                    meta={"engine": self.id, "label": self.label},
                )
        try:
            texts = generate_batch(self.model, self.processor, [prompt for _, prompt, _, _ in ready], s)
        except Exception as err:  # noqa: BLE001 - out of memory, a broken checkpoint...: reported per request
            texts = None
            for i, _, meta, _ in ready:
                out[i] = Update(done=True, error=f"Generation failed: {type(err).__name__}: {err}", meta=meta)
        for (i, _, meta, warnings), text in zip(ready, texts or [], strict=False):
            parser = StreamParser(requests[i].options)
            parser.feed(text)
            out[i] = self._final(parser, requests[i], s, meta, warnings, t0, None, None)
        return [u for u in out if u is not None]

    def stream(
        self,
        request: InspectionRequest,
        stop_event: threading.Event | None = None,
        settings: GenerationConfig | None = None,
    ) -> Iterator[Update]:
        from judo.generation import PromptTooLong
        from judo.response import StreamParser

        t0 = time.perf_counter()
        s = self.settings(settings)
        try:
            prompt, meta, warnings = self._prompt(request, s)
        except Exception as err:
            yield Update(
                done=True,
                error=f"Could not build the prompt: {err}",
                meta={"engine": self.id, "label": self.label},
            )
            return
        meta["warnings"] = warnings
        yield Update(meta={**meta, "phase": "generating"})

        stop = threading.Event()
        parser = StreamParser(request.options)
        parsed = None
        text = ""
        first_s: float | None = None
        stopped: str | None = None
        reported: dict[str, Any] = {}  # what the generator counted or the server said
        deadline = t0 + self.max_seconds
        try:
            for delta in self._deltas(prompt, s, stop, reported):
                if not delta:
                    continue
                if first_s is None:
                    first_s = time.perf_counter() - t0
                text += delta
                parsed = parser.feed(delta)
                live = (
                    parsed.answer
                    if parsed.answer_tagged and _in_options(parsed.answer, request.options)
                    else None
                )
                yield Update(text=text, cells=set(parsed.cells), answer=live, meta=meta)
                if stop_event is not None and stop_event.is_set():
                    stopped = "Stopped by the user."
                    break
                if time.perf_counter() > deadline:
                    stopped = f"Stopped after the {self.max_seconds:g} s time limit."
                    break
        except PromptTooLong as err:  # refused before any prefill: the accelerator stays free
            yield Update(
                done=True, error=str(err), meta={**meta, "total_s": round(time.perf_counter() - t0, 3)}
            )
            return
        except Exception as err:  # out of memory, a broken checkpoint...: report, keep serving
            stop.set()
            yield Update(
                text=text,
                cells=set(parsed.cells) if parsed else set(),
                done=True,
                error=self._failure(err),
                meta={**meta, **reported, "total_s": round(time.perf_counter() - t0, 3)},
            )
            return
        finally:
            stop.set()  # also when the consumer closes this generator early: end the worker thread

        generated = reported.pop("completion_tokens", None)
        yield self._final(parser, request, s, meta, warnings, t0, first_s, stopped, generated, reported)

    def _deltas(
        self, prompt: Any, s: GenerationConfig, stop: threading.Event, reported: dict
    ) -> Iterator[str]:
        """The completion of ``prompt`` as text deltas; ``reported`` gets the generated token count
        (`judo.engines.served` streams from a server and reports its count and which replica answered)."""
        from judo.generation import StreamStats, stream_generate

        stats = StreamStats()
        try:
            yield from stream_generate(
                self.model,
                self.processor,
                prompt,
                s,
                stop_event=stop,
                stats=stats,
                max_prompt_tokens=self.max_prompt_tokens,
            )
        finally:
            reported["completion_tokens"] = stats.tokens

    def backend_meta(self) -> dict[str, Any]:
        """What ran the model, for the record."""
        return {"backend": "transformers"}

    def _failure(self, err: Exception) -> str:
        """The error line of a generation that failed (out of memory, a broken checkpoint...)."""
        return f"Generation failed: {type(err).__name__}: {err}"

    def _final(
        self,
        parser: Any,
        request: InspectionRequest,
        s: GenerationConfig,
        meta: dict[str, Any],
        warnings: list[str],
        t0: float,
        first_s: float | None,
        stopped: str | None,
        generated: int | None = None,
        reported: dict | None = None,
    ) -> Update:
        """The last update: full parse, MMAD answer extraction, warnings and timing."""
        final = parser.finish()
        text = final.text
        if stopped:  # a stop can cut a character's bytes: its decoded half is a replacement character
            text = text.rstrip("\ufffd")
        answer = final.answer
        warnings = list(warnings)
        if stopped:
            warnings.append(stopped)
        if not text.strip():
            warnings.append("The model produced no text.")
        # A stream counts its generated tokens exactly; a batch's texts are re-tokenised, which
        # approximates the count (it can differ by a few).
        counted = generated if generated is not None else self._count_tokens(text)
        n_tokens = min(counted, s.max_new_tokens or counted)
        if counted >= (s.max_new_tokens or 0) and not final.answer_closed:
            warnings.append(f"The output was cut at the {s.max_new_tokens}-token limit.")
        if final.seg_present and not final.seg_valid:
            warnings.append("The <seg> block is malformed; only its readable cells are drawn.")
        if text.strip() and not final.format_ok and self.prompt_style == "judo":
            warnings.append("The output does not follow <seg>…</seg><think>…</think><answer>…</answer>.")
        said = (final.answer_text or "").strip().strip(".()*[] ").upper()
        if request.options and len(said) == 1 and said.isalpha() and said not in request.options:
            warnings.append(
                f"The model answered {said!r}, which is not an option"
                + (f"; MMAD's closest-option rule reads it as {answer}." if answer else ".")
            )
        if answer is not None and not _in_options(answer, request.options):
            warnings.append(
                f"The answer {answer!r} is not one of the options {', '.join(request.options or {})}."
            )
            answer = None
        if answer is not None and not final.answer_tagged and request.options:
            warnings.append(f"No <answer> tag: {answer} was read from the text with MMAD's fallback rules.")
        if answer is None and request.options and text.strip():
            warnings.append("No option letter could be read from the output.")
        total = time.perf_counter() - t0
        gen_s = total - (first_s or 0.0)
        out_meta = {
            **meta,
            "warnings": warnings,
            "think": final.think,
            "format_ok": final.format_ok,
            "seg_present": final.seg_present,
            "seg_valid": final.seg_valid,
            "answer_tagged": final.answer_tagged,
            "first_token_s": round(first_s, 4) if first_s is not None else None,
            "total_s": round(total, 4),
            "new_tokens": n_tokens,
            "tokens_per_s": round(n_tokens / gen_s, 2) if gen_s > 0 and n_tokens else None,
            "stopped": bool(stopped),
            **(reported or {}),
        }
        return Update(text=text, cells=set(final.cells), answer=answer, done=True, meta=out_meta)

    def _count_tokens(self, text: str) -> int:
        tok = getattr(self.processor, "tokenizer", self.processor)
        try:
            return len(tok(text, add_special_tokens=False)["input_ids"])
        except Exception:
            return len(text.split())


def _model_size_once() -> Callable[[Image.Image], Image.Image]:
    """`to_model_size` that resizes each picture object once: MMAD asks ~5 questions about one picture,
    and resizing a 1500x1000 photo to 448 px takes ~23 ms of CPU, against ~60-100 ms of GPU time per
    question for a 7B model in a batch of 16."""
    from judo.images import to_model_size
    from judo.prompts import IMAGE_SIZE

    done: dict[int, Image.Image] = {}

    def fit(image: Image.Image) -> Image.Image:
        if id(image) not in done:
            done[id(image)] = to_model_size(image, IMAGE_SIZE)
        return done[id(image)]

    return fit


def _in_options(answer: str | None, options: dict[str, str] | None) -> bool:
    """An answer counts only when it names an offered option (free questions accept any letter)."""
    if answer is None:
        return False
    return options is None or answer in options
