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
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from judo.engines.base import GenerationSettings, InspectionRequest, Update
from judo.engines.rag import KnowledgeBase


#: Decoding defaults for fields an engine's configuration leaves open: greedy, a bounded budget.
BASE_SETTINGS = GenerationSettings(max_new_tokens=768, do_sample=False, temperature=0.7, top_p=0.9)


class QwenEngine:
    """Streams a Qwen2.5-VL model's answer to one inspection request."""

    kind = "qwen"
    available = True
    reason: str | None = None

    def __init__(
        self,
        id: str,
        label: str,
        model: Any,
        processor: Any,
        *,
        knowledge: KnowledgeBase | None = None,
        prompt_style: str = "judo",
        defaults: GenerationSettings | None = None,
        max_seconds: float = 300.0,
        checkpoint: str | None = None,
        description: str = "",
    ) -> None:
        self.id, self.label = id, label
        self.model, self.processor = model, processor
        self.knowledge = knowledge
        self.prompt_style = prompt_style
        base = asdict(BASE_SETTINGS)
        base.update({k: v for k, v in asdict(defaults or BASE_SETTINGS).items() if v is not None})
        self.defaults = GenerationSettings(**base)
        self.max_seconds = max_seconds
        self.checkpoint = checkpoint
        self.description = description

    def settings(self, override: GenerationSettings | None = None) -> GenerationSettings:
        """The engine's defaults with any non-None field of ``override`` applied (token cap kept)."""
        merged = asdict(self.defaults)
        if override is not None:
            merged.update({k: v for k, v in asdict(override).items() if v is not None})
        cap = self.defaults.max_new_tokens or 768
        merged["max_new_tokens"] = max(1, min(int(merged["max_new_tokens"] or cap), cap))
        return GenerationSettings(**merged)

    def stream(
        self,
        request: InspectionRequest,
        stop_event: threading.Event | None = None,
        settings: GenerationSettings | None = None,
    ) -> Iterator[Update]:
        from judo.prompts import inspection_prompt
        from judo.response import StreamParser

        t0 = time.perf_counter()
        s = self.settings(settings)
        meta: dict[str, Any] = {
            "engine": self.id,
            "label": self.label,
            "checkpoint": self.checkpoint,
            "prompt_style": self.prompt_style,
            "settings": asdict(s),
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
        try:
            prompt = inspection_prompt(
                request.query,
                request.template,
                request.question,
                request.options,
                knowledge=hit.text if hit else None,
                style=self.prompt_style,
            )
        except Exception as err:
            yield Update(done=True, error=f"Could not build the prompt: {err}", meta=meta)
            return
        meta["warnings"] = warnings
        yield Update(meta={**meta, "phase": "generating"})

        stop = threading.Event()
        parser = StreamParser(request.options)
        parsed = None
        text = ""
        first_s: float | None = None
        stopped: str | None = None
        deadline = t0 + self.max_seconds
        reported: dict[str, Any] = {}
        try:
            for delta in self._deltas(prompt, s, stop, reported):
                if not delta:
                    continue
                if first_s is None:
                    first_s = time.perf_counter() - t0
                text += delta
                parsed = parser.feed(delta)
                live = parsed.answer if parsed.answer_tagged and _in_options(parsed.answer, request.options) else None
                yield Update(text=text, cells=set(parsed.cells), answer=live, meta=meta)
                if stop_event is not None and stop_event.is_set():
                    stopped = "Stopped by the user."
                    break
                if time.perf_counter() > deadline:
                    stopped = f"Stopped after the {self.max_seconds:g} s time limit."
                    break
        except Exception as err:  # out of memory, a broken checkpoint...: report, keep serving
            stop.set()
            yield Update(
                text=text,
                cells=set(parsed.cells) if parsed else set(),
                done=True,
                error=self._failure(err),
                meta={**meta, "total_s": round(time.perf_counter() - t0, 3)},
            )
            return
        finally:
            stop.set()  # also when the consumer closes this generator early: end the worker thread

        yield self._final(parser, request, s, meta, warnings, t0, first_s, stopped, reported)

    def _deltas(self, prompt: Any, s: GenerationSettings, stop: threading.Event, reported: dict) -> Iterator[str]:
        """The completion of ``prompt`` as text deltas (`judo.engines.served` streams them from a server,
        and puts what the server said into ``reported``: the token count, which replica answered)."""
        from judo.generation import stream_generate

        return stream_generate(
            self.model,
            self.processor,
            prompt,
            max_new_tokens=s.max_new_tokens,
            do_sample=bool(s.do_sample),
            temperature=float(s.temperature),
            top_p=float(s.top_p),
            stop_event=stop,
        )

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
        s: GenerationSettings,
        meta: dict[str, Any],
        warnings: list[str],
        t0: float,
        first_s: float | None,
        stopped: str | None,
        reported: dict | None = None,
    ) -> Update:
        """The last update: full parse, MMAD answer extraction, warnings and timing."""
        final = parser.finish()
        text = final.text
        answer = final.answer
        warnings = list(warnings)
        if stopped:
            warnings.append(stopped)
        if not text.strip():
            warnings.append("The model produced no text.")
        # A server reports its count; re-tokenising the decoded text approximates it (may differ by a few).
        reported = dict(reported or {})
        counted = reported.pop("completion_tokens", None) or self._count_tokens(text)
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
            warnings.append(f"The answer {answer!r} is not one of the options {', '.join(request.options or {})}.")
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
            "seg_valid": final.seg_valid,
            "answer_tagged": final.answer_tagged,
            "first_token_s": round(first_s, 4) if first_s is not None else None,
            "total_s": round(total, 4),
            "new_tokens": n_tokens,
            "tokens_per_s": round(n_tokens / gen_s, 2) if gen_s > 0 and n_tokens else None,
            "stopped": bool(stopped),
            **reported,
        }
        return Update(text=text, cells=set(final.cells), answer=answer, done=True, meta=out_meta)

    def _count_tokens(self, text: str) -> int:
        tok = getattr(self.processor, "tokenizer", self.processor)
        try:
            return len(tok(text, add_special_tokens=False)["input_ids"])
        except Exception:
            return len(text.split())


def _in_options(answer: str | None, options: dict[str, str] | None) -> bool:
    """An answer counts only when it names an offered option (free questions accept any letter)."""
    if answer is None:
        return False
    return options is None or answer in options
