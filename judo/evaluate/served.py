"""`judo eval --backend openai`: the questions go to one or more OpenAI-compatible servers.

Each ``--base-url`` is one replica (a vLLM on another GPU or machine: data parallel without torch
distributed) of one `judo.engines.served.ServedEngine`, which keeps ``--concurrency`` requests in
flight per replica, each to the least busy one. Each question is one request with the official 1-shot
prompt of `judo.evaluate.answerers.item_prompt`, greedy, the same token budget, images as 448x448
PNG data URLs, so the raw text is what the in-process backend writes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from judo.evaluate.answerers import Prepared, _model_size_once, item_prompt


class ServedEvalError(RuntimeError):
    """A server failed a question for good (after the client's retries); one sentence."""


class ServedAnswerer:
    """Answers batches over the replicas of one served model."""

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
        endpoints = [
            Endpoint(
                url,
                api_key_env=api_key_env,
                timeout_s=timeout_s,
                max_retries=max_retries,
                max_connections=max(1, concurrency),
            )
            for url in dict.fromkeys(base_urls)
        ]
        self.engine = ServedEngine(
            "eval",
            model,
            endpoints,
            model,
            concurrency=concurrency,
            prompt_style=prompt_style,
            defaults=GenerationSettings(max_new_tokens=max_new_tokens, do_sample=False),
            max_seconds=float("inf"),
        )
        reason = self.engine.check()
        if reason is not None:
            raise ServedEvalError(reason)
        #: which replica answered each item of the last batch (records keep it)
        self.last_urls: list[str] = []

    def answer(self, batch: list[Prepared]) -> list[str]:
        from judo.engines.served import ServedError

        fit = _model_size_once()
        prompts = [item_prompt(item, self.engine.prompt_style, fit) for item in batch]
        workers = min(len(prompts), self.engine.concurrency * len(self.engine.endpoints)) or 1
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eval-served") as pool:
                answers = list(pool.map(self.engine.complete, prompts))
        except ServedError as err:
            raise ServedEvalError(str(err)) from None
        self.last_urls = [reported["base_url"] for _, reported in answers]
        return [text for text, _ in answers]
