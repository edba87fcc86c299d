"""Engine and app settings: a YAML file (configs/app.yaml) plus environment-variable overrides.

Why YAML + env: a lab edits one readable file for its workstation (which checkpoints, which golden
samples), while a Space or a CI job changes one or two values without a file of its own
(``JUDO_ENGINE_JUDO_CHECKPOINT=org/judo-7b``). Every override is listed in `ENV_HELP`.

Relative paths in the file are resolved against the project folder (the parent of the folder the
file is in when that folder is called ``configs``, else the file's own folder), so the app finds
``outputs/judo-stage3`` whatever the current directory is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from judo.prompts import STYLES as PROMPT_STYLES

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "app.yaml"

#: Hard ceiling on generated tokens, whatever a file says: an endless model output must end.
MAX_NEW_TOKENS_CAP = 4096
KINDS = ("qwen", "comparator", "openai")
QUANTIZATIONS = (None, "4bit", "8bit")
#: Checkpoint value that means "the offline tiny random model" (built on first use, for plumbing demos).
TINY = "tiny"

ENV_HELP = {
    "JUDO_CONFIG": "the YAML file to read instead of configs/app.yaml",
    "JUDO_ENGINES": "comma-separated engine ids to serve, in this order (e.g. 'judo,comparator')",
    "JUDO_DEFAULT_ENGINE": "id of the engine selected when the page opens",
    "JUDO_ENGINE_<ID>_<FIELD>": "override one engine field, e.g. JUDO_ENGINE_JUDO_CHECKPOINT=org/model, "
    "JUDO_ENGINE_BASE_GRPO_RAG_QUANTIZATION=4bit (ID upper-cased, '-' -> '_')",
    "JUDO_DEVICE": "cuda, cuda:1, cpu (default: cuda when available)",
    "JUDO_KNOWLEDGE": "domain_knowledge.json used by RAG engines",
    "JUDO_MMAD_ROOT": "an MMAD root: its normal images become templates, its samples examples",
    "JUDO_GOLDEN_DIR": "a folder with one sub-folder of golden (normal) images per product",
    "JUDO_AUTH": "'user:password' or a path to a file with one 'user:password' per line",
    "JUDO_QUEUE_SIZE": "how many requests may wait in the queue",
    "JUDO_CONCURRENCY": "how many inspections run on the accelerator at once",
    "JUDO_TINY_DIR": "where the tiny demo model is built/read (checkpoint 'tiny')",
}


class ConfigError(ValueError):
    """The configuration file or an override is wrong; the message names the file and the field."""


@dataclass
class EngineConfig:
    """One engine as the app lists it."""

    id: str
    label: str
    kind: str = "qwen"
    checkpoint: str | None = None
    quantization: str | None = None
    rag: bool = False
    knowledge: str | None = None
    prompt_style: str = "judo"
    max_new_tokens: int = 768
    do_sample: bool = False
    temperature: float = 0.7
    top_p: float = 0.9
    max_seconds: float = 300.0
    description: str = ""
    # kind openai: a model behind an OpenAI-compatible server (vLLM, SGLang, TGI); the key is read from
    # the environment variable named here, never from this file.
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60.0

    def validate(self, where: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.id or ""):
            raise ConfigError(f"{where}: engine id {self.id!r} must be letters, digits, '-', '_' or '.'")
        if self.kind not in KINDS:
            raise ConfigError(f"{where}: engine {self.id!r} kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "qwen" and not self.checkpoint:
            raise ConfigError(f"{where}: engine {self.id!r} needs a checkpoint (a folder, a hub id or 'tiny')")
        if self.kind == "openai" and not (self.base_url and self.model):
            raise ConfigError(f"{where}: engine {self.id!r} (kind openai) needs base_url and model")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: engine {self.id!r} base_url must start with http:// or https://")
        if self.timeout_s <= 0:
            raise ConfigError(f"{where}: engine {self.id!r} timeout_s must be positive")
        if self.quantization not in QUANTIZATIONS:
            raise ConfigError(f"{where}: engine {self.id!r} quantization must be 4bit, 8bit or empty")
        if self.prompt_style not in PROMPT_STYLES:
            raise ConfigError(f"{where}: engine {self.id!r} prompt_style must be one of {PROMPT_STYLES}")
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS_CAP:
            raise ConfigError(f"{where}: engine {self.id!r} max_new_tokens must be 1..{MAX_NEW_TOKENS_CAP}")
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ConfigError(f"{where}: engine {self.id!r} needs temperature > 0 and 0 < top_p <= 1")
        if self.max_seconds <= 0:
            raise ConfigError(f"{where}: engine {self.id!r} max_seconds must be positive")

    @property
    def env_prefix(self) -> str:
        return "JUDO_ENGINE_" + re.sub(r"[^A-Z0-9]", "_", self.id.upper()) + "_"


@dataclass
class TemplateConfig:
    """Where normal templates come from: a lab's golden samples, an MMAD root, the shipped examples."""

    golden_dir: str | None = None  # <golden_dir>/<product>/*.png
    golden: dict[str, str] = field(default_factory=dict)  # product -> folder (explicit list)
    mmad_root: str | None = None
    examples_dir: str | None = "examples"
    mmad_examples_per_category: int = 2


@dataclass
class QueueConfig:
    concurrency_limit: int = 1
    max_size: int = 16
    max_file_size: str = "25mb"


@dataclass
class AppConfig:
    title: str = "JUDO Inspector"
    engines: list[EngineConfig] = field(default_factory=list)
    default_engine: str | None = None
    device: str | None = None
    knowledge: str | None = None
    templates: TemplateConfig = field(default_factory=TemplateConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    auth: str | None = None
    #: Seconds between two UI refreshes while text streams (a cell change always refreshes at once).
    stream_interval_s: float = 0.05
    source: str | None = None  # the file this came from, for messages

    def engine(self, engine_id: str) -> EngineConfig:
        for e in self.engines:
            if e.id == engine_id:
                return e
        raise KeyError(engine_id)


def _dataclass_from(cls, data: Mapping[str, Any] | None, where: str):
    data = dict(data or {})
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    try:
        return cls(**data)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from None


def _coerce(value: str, current: Any, name: str, where: str) -> Any:
    """Turn an environment string into the type of the field it overrides."""
    text = value.strip()
    if isinstance(current, bool) or name in {"rag", "do_sample"}:
        if text.lower() in {"1", "true", "yes", "on"}:
            return True
        if text.lower() in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if name in {"max_new_tokens"}:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if name in {"temperature", "top_p", "max_seconds", "timeout_s"}:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if text.lower() in {"", "none", "null"}:
        return None
    return text


def project_base(config_path: Path) -> Path:
    folder = config_path.resolve().parent
    return folder.parent if folder.name == "configs" else folder


def resolve_path(value: str | None, base: Path) -> str | None:
    """A path from the file, made absolute against the project folder (``~`` expanded)."""
    if not value:
        return None
    p = Path(os.path.expanduser(value))
    return str(p if p.is_absolute() else (base / p).resolve())


def looks_local(checkpoint: str, base: Path) -> bool:
    """Whether a checkpoint names a folder on disk (resolved against ``base``) rather than a hub id."""
    from judo.models import is_hub_id

    return checkpoint != TINY and not is_hub_id(checkpoint, base)


def load_config(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> AppConfig:
    """Read the YAML file (``JUDO_CONFIG`` or configs/app.yaml) and apply environment overrides."""
    env = os.environ if env is None else env
    path = Path(path or env.get("JUDO_CONFIG") or DEFAULT_CONFIG)
    if not path.is_file():
        raise ConfigError(f"Configuration file {path} does not exist (set JUDO_CONFIG to a YAML file).")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    where = str(path)
    base = project_base(path)

    raw_engines = raw.pop("engines", None) or []
    if not isinstance(raw_engines, list) or not all(isinstance(e, dict) for e in raw_engines):
        raise ConfigError(f"{where}: 'engines' must be a list of mappings")
    templates = _dataclass_from(TemplateConfig, raw.pop("templates", None), f"{where} [templates]")
    queue = _dataclass_from(QueueConfig, raw.pop("queue", None), f"{where} [queue]")
    cfg: AppConfig = _dataclass_from(AppConfig, raw, where)
    cfg.templates, cfg.queue, cfg.source = templates, queue, where
    cfg.engines = [
        _dataclass_from(EngineConfig, e, f"{where} [engine {i + 1}]") for i, e in enumerate(raw_engines)
    ]

    _apply_env(cfg, env)

    # Paths: relative to the project folder.
    cfg.knowledge = resolve_path(cfg.knowledge, base)
    t = cfg.templates
    t.golden_dir = resolve_path(t.golden_dir, base)
    t.mmad_root = resolve_path(t.mmad_root, base)
    t.examples_dir = resolve_path(t.examples_dir, base)
    t.golden = {k: resolve_path(v, base) or "" for k, v in (t.golden or {}).items()}
    for e in cfg.engines:
        e.validate(where)
        e.knowledge = resolve_path(e.knowledge, base)
        if e.checkpoint and looks_local(e.checkpoint, base):
            e.checkpoint = resolve_path(e.checkpoint, base)
        e.max_new_tokens = min(e.max_new_tokens, MAX_NEW_TOKENS_CAP)
    ids = [e.id for e in cfg.engines]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{where}: engine ids must be unique, got {ids}")
    if not cfg.engines:
        raise ConfigError(f"{where}: no engines configured")
    if cfg.default_engine and cfg.default_engine not in ids:
        raise ConfigError(f"{where}: default_engine {cfg.default_engine!r} is not one of {ids}")
    if cfg.queue.concurrency_limit < 1 or cfg.queue.max_size < 1:
        raise ConfigError(f"{where}: queue concurrency_limit and max_size must be at least 1")
    return cfg


def _apply_env(cfg: AppConfig, env: Mapping[str, str]) -> None:
    if env.get("JUDO_ENGINES"):
        wanted = [s.strip() for s in env["JUDO_ENGINES"].split(",") if s.strip()]
        by_id = {e.id: e for e in cfg.engines}
        missing = [w for w in wanted if w not in by_id]
        if missing:
            raise ConfigError(f"JUDO_ENGINES names unknown engine(s) {missing}; known: {list(by_id)}")
        cfg.engines = [by_id[w] for w in wanted]
        if cfg.default_engine not in wanted:
            cfg.default_engine = None
    for i, e in enumerate(cfg.engines):
        updated = {}
        for f in fields(EngineConfig):
            if f.name == "id":
                continue
            key = e.env_prefix + f.name.upper()
            if key in env:
                updated[f.name] = _coerce(env[key], getattr(e, f.name), f.name, key)
        if updated:
            cfg.engines[i] = replace(e, **updated)
    simple = {
        "JUDO_DEFAULT_ENGINE": ("default_engine", cfg),
        "JUDO_DEVICE": ("device", cfg),
        "JUDO_KNOWLEDGE": ("knowledge", cfg),
        "JUDO_AUTH": ("auth", cfg),
        "JUDO_MMAD_ROOT": ("mmad_root", cfg.templates),
        "JUDO_GOLDEN_DIR": ("golden_dir", cfg.templates),
    }
    for key, (name, obj) in simple.items():
        if env.get(key, "").strip():
            setattr(obj, name, env[key].strip())
    for key, name in (("JUDO_QUEUE_SIZE", "max_size"), ("JUDO_CONCURRENCY", "concurrency_limit")):
        if env.get(key, "").strip():
            try:
                setattr(cfg.queue, name, int(env[key]))
            except ValueError:
                raise ConfigError(f"{key}: expected an integer, got {env[key]!r}") from None
