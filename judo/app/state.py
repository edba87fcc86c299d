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
        engines = engines if engines is not None else build_engines(config)
        return cls(config, engines, library, defect_titles(config.knowledge), records_problem, on_record)


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
