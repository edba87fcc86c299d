"""What the page is built from, loaded once at start-up: the configuration, the engines (models
loaded), the template library, the defect titles of the domain knowledge, and the record hook."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from judo.app.downloads import check_records_dir
from judo.app.library import TemplateLibrary
from judo.app.runner import RecordHook
from judo.engines import AppConfig, Engine, build_engines
from judo.inspection_log import InspectionLog, LogUnavailable

log = logging.getLogger(__name__)


@dataclass
class AppState:
    """Everything the page is built from, loaded once at start-up (models included)."""

    config: AppConfig
    engines: list[Engine]
    library: TemplateLibrary
    defect_titles: dict[str, list[str]] = field(default_factory=dict)  # category -> defect titles
    records_problem: str | None = None  # why records cannot be written, checked once at start-up
    on_record: RecordHook | None = None  # told of every finished inspection (the inspection log)
    inspection_log: InspectionLog | None = None  # None: off (history.enabled) or unavailable
    log_problem: LogUnavailable | None = None  # why the log could not be opened

    @classmethod
    def load(
        cls, config: AppConfig, engines: list[Engine] | None = None, on_record: RecordHook | None = None
    ) -> AppState:
        library = TemplateLibrary.from_config(config.templates)
        if not config.knowledge and library.knowledge_files:
            # Fall back to the knowledge that came with the template sources (MMAD root, examples).
            config.knowledge = str(library.knowledge_files[0])
        records_problem = check_records_dir(config.records_folder)
        if records_problem:
            log.warning("%s", records_problem)
        inspection_log, log_problem = open_inspection_log(config)
        if on_record is None and inspection_log is not None:
            on_record = inspection_log.add_record
        engines = engines if engines is not None else build_engines(config)
        return cls(
            config,
            engines,
            library,
            defect_titles(config.knowledge),
            records_problem,
            on_record,
            inspection_log,
            log_problem,
        )


def open_inspection_log(config: AppConfig) -> tuple[InspectionLog | None, LogUnavailable | None]:
    """The inspection log the settings ask for (None when off); a log that cannot be opened is reported
    once here and the app runs without it."""
    if not config.history.enabled or not config.history.path:
        return None, None
    try:
        return InspectionLog.open(config.history.path, retention_days=config.history.retention_days), None
    except LogUnavailable as err:
        log.warning("inspection log off: %s", err)
        return None, err


def defect_titles(path: str | None) -> dict[str, list[str]]:
    """Category -> defect titles ("<Title>" of each knowledge text), for the classification preset."""
    if not path or not Path(path).is_file():
        return {}
    from judo.mmad import MMADError, load_knowledge

    try:
        knowledge = load_knowledge(path)
    except MMADError:
        return {}
    out: dict[str, list[str]] = {}
    for e in knowledge.all_entries():
        if e.defect == "good":
            continue
        m = re.search(r"<([^>]+)>", e.text)
        out.setdefault(e.category, []).append(
            m.group(1).strip() if m else e.defect.replace("_", " ").capitalize()
        )
    return out
