"""Engine and app settings: a YAML file (configs/app.yaml) plus environment-variable overrides.

Why YAML + env: a lab edits one readable file for its workstation (which checkpoints, which golden
samples), while a Space or a CI job changes one or two values without a file of its own
(``JUDO_ENGINE_JUDO_CHECKPOINT=org/judo-7b``). Every override is listed in `ENV_HELP`.

The settings are typed models (pydantic): a value is checked against the type of its field, never by
the field's name, and a wrong one is one sentence naming the file and line (or the environment
variable) it came from, e.g. ``configs/app.yaml, line 51: queue.max_size must be an integer (got
'lots').``. Engines are a union discriminated by ``kind`` (``qwen`` when absent): a new kind of engine
is one more model class in `ENGINE_KINDS`.

Relative paths in the file are resolved against the project folder (the parent of the folder the
file is in when that folder is called ``configs``, else the file's own folder), so the app finds
``outputs/judo-stage3`` whatever the current directory is.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from limits import RateLimitItem
from limits import parse as parse_rate
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from judo.prompts import STYLES as PROMPT_STYLES

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "app.yaml"

#: Hard ceiling on generated tokens, whatever a file says: an endless model output must end.
MAX_NEW_TOKENS_CAP = 4096
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
    "JUDO_LIMITS_<FIELD>": "override one abuse limit, e.g. JUDO_LIMITS_LOGIN_PER_CLIENT='5 per minute', "
    "JUDO_LIMITS_UPLOAD_FOLDER_CAP=1gb, JUDO_LIMITS_TRUST_FORWARDED_FOR=true (behind a proxy)",
    "JUDO_RECORDS_DIR": "where inspection records and overlays are written (default: a temp folder)",
    "JUDO_TINY_DIR": "where the tiny demo model is built/read (checkpoint 'tiny')",
    "JUDO_DATA_DIR": "the app's data folder (default: $XDG_DATA_HOME/judo-inspector or the OS's own)",
    "JUDO_HISTORY_<FIELD>": "override one inspection-log setting, e.g. JUDO_HISTORY_ENABLED=false, "
    "JUDO_HISTORY_PATH=/data/inspections.sqlite, JUDO_HISTORY_RETENTION_DAYS=none (keep every row)",
}


class ConfigError(ValueError):
    """The configuration file or an override is wrong; the message names the file and the field."""


# ------------------------------------------------------------------------------------ value types
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}


def parse_size(value: Any) -> int:
    """``25mb`` / ``1.5gb`` / ``1048576`` -> bytes; anything else is a ValueError with the form to use."""
    if isinstance(value, bool):
        raise ValueError("must be a size like 25mb")  # noqa: TRY004 - pydantic reports ValueErrors
    if isinstance(value, int | float):
        size = int(value)
    else:
        m = _SIZE.match(str(value))
        if not m:
            raise ValueError("must be a size like 25mb, 500kb or 2gb")
        size = int(float(m.group(1)) * _UNITS[(m.group(2) or "b").lower()])
    if size <= 0:
        raise ValueError("must be a positive size like 25mb")
    return size


def parse_rate_text(value: Any) -> RateLimitItem:
    """``10 per minute`` / ``25 per 2 seconds`` -> a `limits` rate item (what the app's throttles use)."""
    try:
        item = parse_rate(str(value))
    except ValueError:
        raise ValueError("must be a rate like '10 per minute' or '25 per 2 seconds'") from None
    if item.amount < 1:
        raise ValueError("must allow at least 1 per period")
    return item


def parse_byte_rate(value: Any) -> tuple[int, RateLimitItem]:
    """``200mb per 10 minutes`` -> (bytes, the period as a rate item of that many units)."""
    size, sep, period = str(value).partition(" per ")
    if not sep:
        raise ValueError("must be an upload rate like '200mb per 10 minutes'")
    nbytes = parse_size(size)
    try:
        item = parse_rate(f"{nbytes} per {period.strip()}")
    except ValueError:
        raise ValueError("must be an upload rate like '200mb per 10 minutes'") from None
    return nbytes, item


class Settings(BaseModel):
    """Every section: unknown keys are errors, assignments are checked like the file's values."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


EngineId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


# ---------------------------------------------------------------------------------------- engines
class EngineBase(Settings):
    """What every engine kind has: how the app lists it."""

    id: EngineId
    label: str
    description: str = ""

    @property
    def env_prefix(self) -> str:
        return "JUDO_ENGINE_" + re.sub(r"[^A-Z0-9]", "_", self.id.upper()) + "_"


class QwenEngineConfig(EngineBase):
    """A Qwen2.5-VL checkpoint (JUDO, Base GRPO, Base GRPO + RAG, any fine-tune)."""

    kind: Literal["qwen"] = "qwen"
    checkpoint: str = Field(min_length=1)
    quantization: Literal["4bit", "8bit"] | None = None
    rag: bool = False
    knowledge: str | None = None
    prompt_style: Literal[PROMPT_STYLES] = "judo"  # type: ignore[valid-type]
    max_new_tokens: int = Field(768, ge=1, le=MAX_NEW_TOKENS_CAP)
    #: Longest prompt (chat text + image tokens) sent to the model; longer ones are refused before prefill.
    max_prompt_tokens: int = Field(2048, ge=64)
    do_sample: bool = False
    temperature: float = Field(0.7, gt=0)
    top_p: float = Field(0.9, gt=0, le=1)
    max_seconds: float = Field(300.0, gt=0)


class ComparatorEngineConfig(EngineBase):
    """The training-free query-vs-template comparator (no model to load)."""

    kind: Literal["comparator"]


class ServedEngineConfig(EngineBase):
    """A model behind an OpenAI-compatible server (vLLM, SGLang, TGI): `judo.engines.served`. The API key
    is read from the environment variable named by ``api_key_env``, never from this file."""

    kind: Literal["openai"]
    base_url: str
    model: str = Field(min_length=1)  # the served model name (vllm serve --served-model-name)
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = Field(60.0, gt=0)  # a server silent this long ends the answer with a clear error
    rag: bool = False
    knowledge: str | None = None
    prompt_style: Literal[PROMPT_STYLES] = "judo"  # type: ignore[valid-type]
    max_new_tokens: int = Field(768, ge=1, le=MAX_NEW_TOKENS_CAP)
    do_sample: bool = False
    temperature: float = Field(0.7, gt=0)
    top_p: float = Field(0.9, gt=0, le=1)
    max_seconds: float = Field(300.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (e.g. http://localhost:8000/v1)")
        return value


#: kind -> model class; one more entry (and its builder in judo.engines.pool) adds a kind of engine.
ENGINE_KINDS: dict[str, type[EngineBase]] = {
    "qwen": QwenEngineConfig,
    "comparator": ComparatorEngineConfig,
    "openai": ServedEngineConfig,
}
KINDS = tuple(ENGINE_KINDS)


def _engine_kind(value: Any) -> str:
    kind = value.get("kind", "qwen") if isinstance(value, dict) else getattr(value, "kind", "qwen")
    return kind if kind in ENGINE_KINDS else "unknown"


class _UnknownKind(BaseModel):
    """Any other ``kind``: refused with the kinds there are (the rest of the entry is not looked at)."""

    model_config = ConfigDict(extra="allow")
    kind: Any

    @field_validator("kind")
    @classmethod
    def _refuse(cls, value: Any) -> Any:
        raise ValueError(f"must be one of {', '.join(KINDS)}")


_TAGGED = tuple(Annotated[cls, Tag(kind)] for kind, cls in {**ENGINE_KINDS, "unknown": _UnknownKind}.items())
#: Any engine entry: the model class of its ``kind``.
EngineConfig = Annotated[Union[_TAGGED], Discriminator(_engine_kind)]  # noqa: UP007 - built from ENGINE_KINDS


# -------------------------------------------------------------------------------------- sections
class TemplateConfig(Settings):
    """Where normal templates come from: a lab's golden samples, an MMAD root, the shipped examples."""

    golden_dir: str | None = None  # <golden_dir>/<product>/*.png
    golden: dict[str, str] = Field(default_factory=dict)  # product -> folder (explicit list)
    mmad_root: str | None = None
    examples_dir: str | None = "examples"
    mmad_examples_per_category: int = Field(2, ge=0)


class QueueConfig(Settings):
    concurrency_limit: int = Field(1, ge=1)
    max_size: int = Field(16, ge=1)
    #: Largest single upload, in bytes (the file may say ``25mb``).
    max_file_size: int = 25 * 1024**2

    @field_validator("max_file_size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        return parse_size(value)


class LimitsConfig(Settings):
    """What one client may cost the server: sign-in attempts, upload bytes, the upload folder's size."""

    #: Sign-in attempts one client address may make (successful ones count too; refused ones do not).
    login_per_client: str = "10 per minute"
    #: Sign-in attempts against one user name from anywhere (a lockout window for that name).
    login_per_user: str = "30 per hour"
    #: Upload bytes one client address may send.
    upload_per_client: str = "100mb per 10 minutes"
    #: Total size of Gradio's upload/cache folder; the oldest entries go first, then uploads are refused.
    upload_folder_cap: int = 2 * 1024**3
    #: Uploads younger than this are never removed to make room (a queued inspection still needs them).
    upload_keep_s: float = Field(600.0, ge=0)
    #: Take the client address from X-Forwarded-For (only behind a proxy that sets it, e.g. a Space).
    trust_forwarded_for: bool = False
    #: Serve records and overlays only to the session (cookie) or user that made them. Off only where the
    #: browser cannot keep the app's cookie (an embedding page that blocks third-party cookies).
    owner_only_files: bool = True

    @field_validator("login_per_client", "login_per_user")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate_text(value)
        return value

    @field_validator("upload_per_client")
    @classmethod
    def _byte_rate(cls, value: str) -> str:
        parse_byte_rate(value)
        return value

    @field_validator("upload_folder_cap", mode="before")
    @classmethod
    def _cap(cls, value: Any) -> int:
        return parse_size(value)


APP_DIR_NAME = "judo-inspector"


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The app's data folder: ``JUDO_DATA_DIR``, else the user's data folder by the OS's rules
    (``$XDG_DATA_HOME`` or ``~/.local/share`` on Linux, ``~/Library/Application Support`` on macOS,
    ``%LOCALAPPDATA%`` on Windows), in a ``judo-inspector`` folder."""
    env = os.environ if env is None else env
    if (env.get("JUDO_DATA_DIR") or "").strip():
        return Path(os.path.expanduser(env["JUDO_DATA_DIR"].strip()))
    home = Path(env.get("HOME") or Path.home())
    if os.name == "nt":
        base = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        xdg = (env.get("XDG_DATA_HOME") or "").strip()
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "share"
    return base / APP_DIR_NAME


class HistoryConfig(Settings):
    """The inspection log (`judo.inspection_log`): every inspection as a row of a SQLite file."""

    #: null: on, except on a Hugging Face Space (``SPACE_ID`` set), where visitors would share one log.
    enabled: bool | None = None
    #: The SQLite file (null: <data folder>/inspections.sqlite, see `data_dir`).
    path: str | None = None
    #: Rows older than this many days are deleted (null: keep every row).
    retention_days: float | None = Field(365, gt=0)

    @field_validator("retention_days", mode="before")
    @classmethod
    def _keep(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().lower() in {"", "none", "null"} else value


class AppConfig(Settings):
    title: str = "JUDO Inspector"
    engines: list[EngineConfig] = Field(default_factory=list)
    default_engine: str | None = None
    device: str | None = None
    knowledge: str | None = None
    templates: TemplateConfig = Field(default_factory=TemplateConfig)
    queue: QueueConfig = Field(default_factory=QueueConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    auth: str | None = None
    #: Where records and overlays are written (null: <temp>/judo-records).
    records_dir: str | None = None
    #: Seconds between two UI refreshes while text streams (a cell change always refreshes at once).
    stream_interval_s: float = Field(0.05, gt=0)
    source: str | None = None  # the file this came from, for messages

    def engine(self, engine_id: str) -> EngineBase:
        for e in self.engines:
            if e.id == engine_id:
                return e
        raise KeyError(engine_id)

    @property
    def records_folder(self) -> Path:
        return Path(self.records_dir) if self.records_dir else Path(tempfile.gettempdir()) / "judo-records"


# ---------------------------------------------------------------------------------- file reading
Loc = tuple[Any, ...]


def _read_yaml(path: Path) -> tuple[Any, dict[Loc, int]]:
    """The file's data and the line of every value in it, by path (``("queue", "max_size")`` -> 51)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(f"{path}, line {line}: the file is not UTF-8 text (save it as UTF-8).") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        at = f", line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{at}: not valid YAML ({err.problem or err.context}).") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err}).") from None
    lines: dict[Loc, int] = {}

    def walk(n: yaml.Node, loc: Loc) -> None:
        lines[loc] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                lines[(*loc, key.value)] = key.start_mark.line + 1
                walk(value, (*loc, key.value))
                lines[(*loc, key.value)] = key.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, (*loc, i))

    if node is not None:
        walk(node, ())
    return raw, lines


def _describe(error: dict[str, Any]) -> str:
    """One pydantic error as the end of a sentence: what the value must be, and what it was."""
    kind, ctx = error["type"], error.get("ctx") or {}
    given = error.get("input")
    shown = repr(given) if len(repr(given)) <= 60 else repr(given)[:57] + "...'"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is an unknown field"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"])) + (f" (got {shown})" if given is not None else "")
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')} (got {shown})"
    if kind in {"int_parsing", "int_type", "int_from_float"}:
        return f"must be an integer (got {shown})"
    if kind in {"float_parsing", "float_type"}:
        return f"must be a number (got {shown})"
    if kind in {"bool_parsing", "bool_type"}:
        return f"must be true or false (got {shown})"
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        bound = {
            "greater_than": "> ",
            "greater_than_equal": ">= ",
            "less_than": "< ",
            "less_than_equal": "<= ",
        }
        limit = next(iter(ctx.values()), "")
        return f"must be {bound[kind]}{limit} (got {shown})"
    if kind == "string_pattern_mismatch":
        return f"must be letters, digits, '-', '_' or '.' (got {shown})"
    if kind == "string_too_short":
        return "must not be empty"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return f"must be a mapping of settings (got {shown})"
    if kind == "list_type":
        return f"must be a list (got {shown})"
    if kind == "string_type":
        return f"must be text (got {shown})"
    return f"{error['msg'][0].lower()}{error['msg'][1:]} (got {shown})"


def _field_path(loc: Loc, raw: Any) -> tuple[Loc, str]:
    """Drop the union tags pydantic adds (``engines.0.qwen.checkpoint``) and name the field for a person."""
    clean: list[Any] = []
    for part in loc:
        if (part in ENGINE_KINDS or part == "unknown") and len(clean) == 2 and clean[0] == "engines":
            continue
        clean.append(part)
    name = ".".join(str(p) for p in clean)
    if len(clean) >= 2 and clean[0] == "engines" and isinstance(clean[1], int):
        engines = raw.get("engines") if isinstance(raw, dict) else None
        item = engines[clean[1]] if isinstance(engines, list) and clean[1] < len(engines) else None
        ident = item.get("id") if isinstance(item, dict) else None
        who = f"engine {ident!r}" if ident else f"engine {clean[1] + 1}"
        name = who + (" " + ".".join(str(p) for p in clean[2:]) if len(clean) > 2 else "")
    return tuple(clean), name


def _config_error(
    err: ValidationError, path: Path, raw: Any, lines: dict[Loc, int], from_env: dict[Loc, str]
) -> ConfigError:
    first = err.errors(include_url=False)[0]
    loc, name = _field_path(tuple(first["loc"]), raw)
    if loc in from_env:
        where = from_env[loc]
    else:
        probe = loc
        while probe and probe not in lines:
            probe = probe[:-1]
        where = f"{path}, line {lines[probe]}" if probe in lines else str(path)
    if first["type"] == "missing" and loc and loc[-1] == "checkpoint":
        return ConfigError(
            f"{where}: {name.rsplit(' ', 1)[0]} needs a checkpoint (a folder, a hub id or 'tiny')."
        )
    return ConfigError(f"{where}: {name} {_describe(first)}.")


# ------------------------------------------------------------------------------------------ paths
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


# ------------------------------------------------------------------------------------------- load
def load_config(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> AppConfig:
    """Read the YAML file (``JUDO_CONFIG`` or configs/app.yaml) and apply environment overrides."""
    env = os.environ if env is None else env
    path = Path(path or env.get("JUDO_CONFIG") or DEFAULT_CONFIG)
    if not path.is_file():
        raise ConfigError(f"Configuration file {path} does not exist (set JUDO_CONFIG to a YAML file).")
    raw, lines = _read_yaml(path)
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}, line 1: the top level must be a mapping of settings.")
    if "source" in raw:
        raise ConfigError(f"{path}, line {lines.get(('source',), 1)}: source is an unknown field.")
    engines = raw.get("engines")
    if engines is not None and not (isinstance(engines, list) and all(isinstance(e, dict) for e in engines)):
        raise ConfigError(f"{path}, line {lines.get(('engines',), 1)}: 'engines' must be a list of mappings.")
    from_env = _apply_env(raw, env)
    try:
        cfg = AppConfig.model_validate(raw)
    except ValidationError as err:
        raise _config_error(err, path, raw, lines, from_env) from None
    cfg.source = str(path)
    _finish(cfg, path, lines)
    _finish_history(cfg.history, project_base(path), env)
    return cfg


def _finish_history(history: HistoryConfig, base: Path, env: Mapping[str, str]) -> None:
    """``enabled`` and ``path`` decided: off on a Space unless the file or environment says on; the
    default file in the data folder."""
    if history.enabled is None:
        history.enabled = not (env.get("SPACE_ID") or "").strip()
    history.path = resolve_path(history.path, base) or str(data_dir(env) / "inspections.sqlite")


def _finish(cfg: AppConfig, path: Path, lines: dict[Loc, int]) -> None:
    """Cross-field rules, and relative paths made absolute against the project folder."""
    base = project_base(path)
    cfg.knowledge = resolve_path(cfg.knowledge, base)
    cfg.records_dir = resolve_path(cfg.records_dir, base)
    t = cfg.templates
    t.golden_dir = resolve_path(t.golden_dir, base)
    t.mmad_root = resolve_path(t.mmad_root, base)
    t.examples_dir = resolve_path(t.examples_dir, base)
    t.golden = {k: resolve_path(v, base) or "" for k, v in (t.golden or {}).items()}
    for e in cfg.engines:
        if isinstance(e, ServedEngineConfig):
            e.knowledge = resolve_path(e.knowledge, base)
        if isinstance(e, QwenEngineConfig):
            e.knowledge = resolve_path(e.knowledge, base)
            if looks_local(e.checkpoint, base):
                e.checkpoint = resolve_path(e.checkpoint, base) or e.checkpoint
    ids = [e.id for e in cfg.engines]
    at = f"{path}, line {lines.get(('engines',), 1)}"
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{at}: engine ids must be unique, got {ids}.")
    if not cfg.engines:
        raise ConfigError(f"{at}: no engines configured.")
    if cfg.default_engine and cfg.default_engine not in ids:
        at = f"{path}, line {lines.get(('default_engine',), 1)}"
        raise ConfigError(f"{at}: default_engine {cfg.default_engine!r} is not one of {ids}.")


def _env_value(value: str) -> str | None:
    """An environment string as the file would hold it: empty / none / null mean "not set"."""
    text = value.strip()
    return None if text.lower() in {"", "none", "null"} else text


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> dict[Loc, str]:
    """Write the overrides into the file's data before validation; return where each value came from."""
    origin: dict[Loc, str] = {}
    if env.get("JUDO_ENGINES"):
        wanted = [s.strip() for s in env["JUDO_ENGINES"].split(",") if s.strip()]
        by_id = {e.get("id"): e for e in raw.get("engines") or []}
        missing = [w for w in wanted if w not in by_id]
        if missing:
            raise ConfigError(f"JUDO_ENGINES names unknown engine(s) {missing}; known: {list(by_id)}.")
        raw["engines"] = [by_id[w] for w in wanted]
        if raw.get("default_engine") not in wanted:
            raw["default_engine"] = None
    for i, item in enumerate(raw.get("engines") or []):
        cls = ENGINE_KINDS.get(_engine_kind(item))
        if cls is None or not isinstance(item.get("id"), str):
            continue
        prefix = "JUDO_ENGINE_" + re.sub(r"[^A-Z0-9]", "_", item["id"].upper()) + "_"
        for name in cls.model_fields:
            key = prefix + name.upper()
            if name not in {"id", "kind"} and key in env:
                item[name] = _env_value(env[key])
                origin[("engines", i, name)] = key
    simple = {
        "JUDO_DEFAULT_ENGINE": ("default_engine",),
        "JUDO_DEVICE": ("device",),
        "JUDO_KNOWLEDGE": ("knowledge",),
        "JUDO_AUTH": ("auth",),
        "JUDO_RECORDS_DIR": ("records_dir",),
        "JUDO_MMAD_ROOT": ("templates", "mmad_root"),
        "JUDO_GOLDEN_DIR": ("templates", "golden_dir"),
        "JUDO_QUEUE_SIZE": ("queue", "max_size"),
        "JUDO_CONCURRENCY": ("queue", "concurrency_limit"),
        **{f"JUDO_LIMITS_{name.upper()}": ("limits", name) for name in LimitsConfig.model_fields},
        **{f"JUDO_HISTORY_{name.upper()}": ("history", name) for name in HistoryConfig.model_fields},
    }
    for key, loc in simple.items():
        if env.get(key, "").strip():
            target = raw
            for part in loc[:-1]:
                if not isinstance(target.get(part), dict):
                    target[part] = {}
                target = target[part]
            target[loc[-1]] = env[key].strip()
            origin[loc] = key
    return origin
