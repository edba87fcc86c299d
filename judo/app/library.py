"""The template library and example list the app offers: golden samples, an MMAD root, shipped examples.

A lab compares each query against its own golden (known-good) samples of the same product, so the
template picker is a per-product gallery gathered from three configured sources:

- ``golden_dir``: one sub-folder of images per product (or an explicit product -> folder map);
- ``mmad_root``: the normal images MMAD lists as templates, per category, and a few MMAD samples as
  examples (with their questions and masks);
- ``examples_dir``: the shipped synthetic examples (examples/index.json, made by scripts/make_examples.py).

A source that is missing or broken is skipped with a note (shown in the app), never a crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judo.engines.config import TemplateConfig
from judo.golden import golden_images

#: A gallery with thousands of thumbnails helps nobody and slows the page: show the first ones.
MAX_TEMPLATES_PER_PRODUCT = 48


@dataclass
class Example:
    """A ready-made inspection: query, template, optional truth mask, and questions with answers."""

    id: str
    title: str
    category: str
    query: Path
    template: Path
    mask: Path | None = None
    dataset: str | None = None
    defect: str | None = None
    questions: list[dict[str, Any]] = field(default_factory=list)  # type, subtask, text, options, answer


@dataclass
class TemplateLibrary:
    templates: dict[str, list[Path]] = field(default_factory=dict)  # product -> normal images
    examples: list[Example] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # sources that could not be read
    knowledge_files: list[Path] = field(default_factory=list)

    def products(self) -> list[str]:
        return sorted(self.templates)

    def templates_for(self, product: str | None) -> list[Path]:
        return list(self.templates.get(product or "", []))[:MAX_TEMPLATES_PER_PRODUCT]

    def example(self, example_id: str) -> Example | None:
        return next((e for e in self.examples if e.id == example_id), None)

    def refresh(self, product: str, folder: Path) -> list[Path]:
        """Re-read `product`'s golden folder after a change (judo.golden): its pictures replace the ones
        listed from it before, in front of those from other sources. Returns the product's gallery."""
        others = [p for p in self.templates.get(product, []) if p.parent != folder]
        self.templates[product] = [*golden_images(folder), *others]
        return self.templates_for(product)

    def _add(self, product: str, paths: list[Path]) -> None:
        seen = self.templates.setdefault(product, [])
        seen.extend(p for p in paths if p not in seen)

    @classmethod
    def from_config(cls, cfg: TemplateConfig) -> TemplateLibrary:
        lib = cls()
        if cfg.golden_dir:
            lib._load_golden_dir(Path(cfg.golden_dir))
        for product, folder in (cfg.golden or {}).items():
            lib._load_folder(product, Path(folder))
        if cfg.mmad_root:
            lib._load_mmad(Path(cfg.mmad_root), cfg.mmad_examples_per_category)
        if cfg.examples_dir:
            lib._load_examples(Path(cfg.examples_dir))
        return lib

    # ------------------------------------------------------------------ sources
    def _load_folder(self, product: str, folder: Path) -> None:
        if not folder.is_dir():
            self.notes.append(f"golden samples for {product}: folder {folder} not found")
            return
        images = golden_images(folder)
        if not images:
            self.notes.append(f"golden samples for {product}: no images in {folder}")
            return
        self._add(product, images)

    def _load_golden_dir(self, root: Path) -> None:
        if not root.is_dir():
            self.notes.append(f"golden sample folder {root} not found")
            return
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            self._load_folder(sub.name, sub)

    def _load_mmad(self, root: Path, per_category: int) -> None:
        from judo.mmad import MMADError, load_mmad

        try:
            data = load_mmad(root)
        except MMADError as err:
            self.notes.append(f"MMAD root {root}: {err}")
            return
        if (root / "domain_knowledge.json").is_file():
            self.knowledge_files.append(root / "domain_knowledge.json")
        counts: dict[str, int] = {}
        for sample in data.samples.values():
            paths = [p for p in (*sample.random_templates, *sample.similar_templates) if Path(p).is_file()]
            self._add(sample.category, paths)
            if sample.is_normal or counts.get(sample.category, 0) >= per_category or not paths:
                continue
            counts[sample.category] = counts.get(sample.category, 0) + 1
            self.examples.append(
                Example(
                    id=f"mmad:{sample.key}",
                    title=f"MMAD {sample.category}: {sample.defect}",
                    category=sample.category,
                    query=sample.image_path,
                    template=Path(sample.random_templates[0]) if sample.random_templates else paths[0],
                    mask=sample.mask_path,
                    dataset=sample.dataset,
                    defect=sample.defect,
                    questions=[
                        {
                            "type": q.type,
                            "subtask": q.subtask,
                            "text": q.text,
                            "options": dict(q.options),
                            "answer": q.answer,
                        }
                        for q in sample.questions
                    ],
                )
            )

    def _load_examples(self, folder: Path) -> None:
        index_path = folder / "index.json"
        if not index_path.is_file():
            self.notes.append(f"no examples: {index_path} not found (run scripts/make_examples.py)")
            return
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            for product, rels in index.get("templates", {}).items():
                self._add(product, [folder / r for r in rels if (folder / r).is_file()])
            for raw in index.get("examples", []):
                self.examples.append(
                    Example(
                        id=raw["id"],
                        title=raw.get("title", raw["id"]),
                        category=raw["category"],
                        query=folder / raw["query"],
                        template=folder / raw["template"],
                        mask=folder / raw["mask"] if raw.get("mask") else None,
                        dataset=raw.get("dataset"),
                        defect=raw.get("defect"),
                        questions=list(raw.get("questions", [])),
                    )
                )
            if index.get("knowledge") and (folder / index["knowledge"]).is_file():
                self.knowledge_files.append(folder / index["knowledge"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            self.notes.append(f"examples index {index_path} is unreadable: {err}")
