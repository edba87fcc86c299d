"""Inspection engines: one contract (`Engine`) over language models and the training-free comparator.

    from judo.engines import load_config, build_engines, InspectionRequest
    engines = build_engines(load_config("configs/app.yaml"))
    for update in engines[0].run(InspectionRequest(query, template, "Is there a defect?", {"A": "Yes", "B": "No"})):
        print(update.text, update.cells, update.answer)

Submodules are imported lazily by the functions that need them, so importing this package does not
import torch or transformers.
"""

from judo.engines.base import Engine, InspectionRequest, UnavailableEngine, Update
from judo.engines.config import AppConfig, ConfigError, EngineConfig, load_config
from judo.engines.pool import EngineLoadError, ModelPool, build_engine, build_engines, default_engine

__all__ = [
    "AppConfig",
    "ConfigError",
    "Engine",
    "EngineConfig",
    "EngineLoadError",
    "InspectionRequest",
    "ModelPool",
    "UnavailableEngine",
    "Update",
    "build_engine",
    "build_engines",
    "default_engine",
    "load_config",
]
