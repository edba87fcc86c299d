"""Build the configured engines, loading each checkpoint once and never letting one failure stop the app.

"JUDO", "Base GRPO + RAG" and "Base GRPO" name two checkpoints, not three: engines with the same
(checkpoint, quantization, device) share one loaded model, which halves the memory of the default
setup. A checkpoint that cannot be loaded (not trained yet, hub unreachable offline, out of memory)
turns its engines into `UnavailableEngine`s whose reason says what happened and what to do; the
remaining engines, and the app, still start.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judo.engines.base import Engine, UnavailableEngine
from judo.engines.config import TINY, AppConfig, EngineConfig

log = logging.getLogger(__name__)

ModelKey = tuple[str, str | None, str | None]
#: Engines that answer with a language model (in process or served), as opposed to the comparator.
LANGUAGE_MODEL_KINDS = ("qwen", "openai")


class EngineLoadError(RuntimeError):
    """A checkpoint could not be loaded; the message says why and what to do."""


def tiny_dir() -> Path:
    """Where the offline tiny demo model lives (built on first use)."""
    default = Path(os.path.expanduser("~/.cache/judo/tiny-qwen2.5-vl"))
    return Path(os.environ.get("JUDO_TINY_DIR") or default)


@dataclass
class ModelPool:
    """Loaded (model, processor) pairs by (checkpoint, quantization, device); failures are cached too."""

    device: str | None = None
    loader: Callable[[str, str | None, str | None], tuple[Any, Any]] | None = None
    _loaded: dict[ModelKey, tuple[Any, Any] | EngineLoadError] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, checkpoint: str, quantization: str | None = None) -> tuple[Any, Any]:
        key = (checkpoint, quantization, self.device)
        with self._lock:
            if key not in self._loaded:
                try:
                    self._loaded[key] = self._load(checkpoint, quantization)
                except EngineLoadError as err:
                    self._loaded[key] = err
            got = self._loaded[key]
        if isinstance(got, EngineLoadError):
            raise got
        return got

    @property
    def models_loaded(self) -> int:
        return sum(1 for v in self._loaded.values() if not isinstance(v, Exception))

    def _load(self, checkpoint: str, quantization: str | None) -> tuple[Any, Any]:
        if checkpoint == TINY:
            checkpoint = str(_ensure_tiny())
        if self.loader is not None:
            return self.loader(checkpoint, quantization, self.device)
        from judo.models import ModelLoadError, check_processor, load_model, load_processor

        try:
            processor = load_processor(checkpoint)
            model = load_model(checkpoint, quantization=quantization, device=self.device)
            check_processor(processor, model.config)
        except ModelLoadError as err:
            raise EngineLoadError(str(err)) from None
        except Exception as err:  # out of memory, missing bitsandbytes, a broken file ...
            raise EngineLoadError(f"loading {checkpoint} failed: {type(err).__name__}: {err}") from None
        return model, processor


def _ensure_tiny() -> Path:
    """Build the tiny random model once (a few seconds, offline) for plumbing demos."""
    folder = tiny_dir()
    if not (folder / "config.json").is_file():
        from judo.synthetic.tiny_model import build_tiny

        log.info("building the tiny demo model in %s", folder)
        build_tiny(folder, seed=0)
    return folder


def build_engine(cfg: EngineConfig, pool: ModelPool, knowledge_path: str | None = None) -> Engine:
    """One engine from its configuration; raises EngineLoadError (or KnowledgeError) when it cannot run."""
    if cfg.kind == "comparator":
        from judo.engines.comparator import ComparatorEngine

        return ComparatorEngine(id=cfg.id, label=cfg.label, description=cfg.description)

    from judo.engines.qwen import QwenEngine
    from judo.engines.rag import KnowledgeBase
    from judo.generation import decoding

    knowledge = None
    defaults = decoding(
        max_new_tokens=cfg.max_new_tokens,
        do_sample=cfg.do_sample,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
    )
    if cfg.rag:
        path = cfg.knowledge or knowledge_path
        if not path:
            raise EngineLoadError(
                "RAG is on but no knowledge file is configured: set 'knowledge:' (engine or app level) "
                "or JUDO_KNOWLEDGE to MMAD's domain_knowledge.json."
            )
        knowledge = KnowledgeBase.from_file(path)
    if cfg.kind == "openai":
        from judo.engines.served import ServedEngine
        from judo.openai_api import Endpoint

        endpoint = Endpoint(cfg.base_url or "", api_key_env=cfg.api_key_env, timeout_s=cfg.timeout_s)
        engine = ServedEngine(
            cfg.id,
            cfg.label,
            endpoint,
            cfg.model or "",
            knowledge=knowledge,
            prompt_style=cfg.prompt_style,
            defaults=defaults,
            max_seconds=cfg.max_seconds,
            description=cfg.description,
        )
        engine.check()  # a server that is down: listed as unavailable with the reason, checked again later
        return engine
    model, processor = pool.get(cfg.checkpoint or "", cfg.quantization)
    description = cfg.description
    if cfg.checkpoint == TINY:
        description = (description + " " if description else "") + (
            "Tiny random model: tests the plumbing only; its text is meaningless."
        )
    return QwenEngine(
        cfg.id,
        cfg.label,
        model,
        processor,
        knowledge=knowledge,
        prompt_style=cfg.prompt_style,
        defaults=defaults,
        max_seconds=cfg.max_seconds,
        max_prompt_tokens=cfg.max_prompt_tokens,
        checkpoint=cfg.checkpoint,
        description=description,
    )


def build_engines(config: AppConfig, pool: ModelPool | None = None) -> list[Engine]:
    """Every configured engine, in order; the ones that cannot load become UnavailableEngine."""
    from judo.engines.rag import KnowledgeError

    pool = pool or ModelPool(device=config.device)
    engines: list[Engine] = []
    for cfg in config.engines:
        try:
            engines.append(build_engine(cfg, pool, config.knowledge))
        except (EngineLoadError, KnowledgeError) as err:
            hint = f" (or set {cfg.env_prefix}CHECKPOINT)" if cfg.kind == "qwen" else ""
            reason = f"{err}{hint}"
            log.warning("engine %s unavailable: %s", cfg.id, reason)
            engines.append(UnavailableEngine(cfg.id, cfg.label, reason, description=cfg.description))
    return engines


def default_engine(engines: list[Engine], preferred: str | None = None) -> Engine | None:
    """The preferred engine when it can run, else the first available language model, else any
    available engine (the comparator when no checkpoint loads), else None."""
    available = [e for e in engines if e.available]
    for e in available:
        if e.id == preferred:
            return e
    for e in available:
        if getattr(e, "kind", "") in LANGUAGE_MODEL_KINDS:
            return e
    return available[0] if available else None
