"""`judo eval --backend openai`: the questions go to one or more OpenAI-compatible servers.

Each ``--base-url`` is one replica (a vLLM on another GPU or machine: data parallel without torch
distributed). Every replica gets ``--concurrency`` worker threads; the workers of all replicas take
the questions of a batch from one queue, so a faster replica answers more of them. Each question is
one request through the served engine (`judo.engines.served.ServedEngine.complete`): the official
1-shot prompt of `judo.evaluate.answerers.item_prompt`, greedy, the same token budget, images as
448x448 PNG data URLs, so the raw text is what the in-process backend would write.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

from judo.evaluate.answerers import Prepared, _model_size_once, item_prompt


class ServedEvalError(RuntimeError):
    """A server failed a question for good (after the client's retries); one sentence."""


@dataclass
class ServedAnswer:
    text: str
    base_url: str


class ServedAnswerer:
    """Answers batches over several replicas with at most ``concurrency`` requests in flight per replica."""

    tagged_only = False

    def __init__(
        self,
        base_urls: list[str],
        model: str,
        *,
        prompt_style: str = "judo",
        max_new_tokens: int = 512,
        concurrency: int = 4,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 120.0,
        max_retries: int = 2,
    ) -> None:
        from judo.engines.base import GenerationSettings
        from judo.engines.served import ServedEngine
        from judo.openai_api import Endpoint

        if not base_urls:
            raise ValueError("--backend openai needs at least one --base-url")
        if concurrency < 1:
            raise ValueError(f"--concurrency must be >= 1, got {concurrency}")
        self.concurrency = concurrency
        self.prompt_style = prompt_style
        settings = GenerationSettings(max_new_tokens=max_new_tokens, do_sample=False)
        self.engines = [
            ServedEngine(
                f"eval-{i}",
                url,
                Endpoint(
                    url,
                    api_key_env=api_key_env,
                    timeout_s=timeout_s,
                    max_retries=max_retries,
                    max_connections=concurrency,
                ),
                model,
                prompt_style=prompt_style,
                defaults=settings,
                max_seconds=float("inf"),
            )
            for i, url in enumerate(dict.fromkeys(base_urls))
        ]
        for engine in self.engines:
            reason = engine.check()
            if reason is not None:
                raise ServedEvalError(reason)
        #: which replica answered each item of the last batch (records keep it)
        self.last_urls: list[str] = []

    @property
    def workers(self) -> int:
        return self.concurrency * len(self.engines)

    def answer(self, batch: list[Prepared]) -> list[str]:
        answers = self.answer_all(batch)
        self.last_urls = [a.base_url for a in answers]
        return [a.text for a in answers]

    def answer_all(self, batch: list[Prepared]) -> list[ServedAnswer]:
        """Every item of ``batch`` asked once, in parallel; the first failure stops the batch."""
        fit = _model_size_once()
        prompts = [item_prompt(item, self.prompt_style, fit) for item in batch]
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for i in range(len(prompts)):
            todo.put(i)
        results: list[ServedAnswer | None] = [None] * len(prompts)
        failures: list[str] = []
        failed = threading.Event()

        def work(engine) -> None:
            from judo.engines.served import ServedError

            while not failed.is_set():
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    text, _ = engine.complete(prompts[i])
                except ServedError as err:
                    failures.append(str(err))
                    failed.set()
                    return
                results[i] = ServedAnswer(text, engine.endpoint.base_url)

        threads = [
            threading.Thread(target=work, args=(engine,), name=f"eval-{engine.id}-{k}", daemon=True)
            for engine in self.engines
            for k in range(min(self.concurrency, len(prompts)))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise ServedEvalError(failures[0])
        return [r for r in results if r is not None]

    def close(self) -> None:
        for engine in self.engines:
            engine.endpoint.close()
