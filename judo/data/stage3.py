"""Stage 3 data: MMAD questions with pseudo-domain rationales, for GRPO (paper, section 3.3).

The images are exactly those of stage 1 (read from the stage-1 manifest, MMAD keys only: Real-IAD has
no questions), with the template and the comparative explanation stage 1 used. For every question of
those images the teacher writes a rationale from the query, the correct answer, both images, the
stage-1 explanation and the category's domain knowledge. One row per question:

    prompt     judo.prompts.inspection_prompt(query, template, question, options, style="judo")
    images     [paths of the prompt's 448x448 images, in placeholder order]
    answer     the correct letter            (choice/structure rewards)
    seg        true cells as [[row, col]...] (seg reward)
    rationale  the teacher's rationale       (domain reward)
    + options (JSON), question, type, subtask, question_key, mmad_key, dataset, category, defect
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from judo.data.build import (
    DATA_FILE,
    MANIFEST_FILE,
    Build,
    BuildSummary,
    DataBuildError,
    WorkItem,
    print_dry_run,
    run_stage,
)
from judo.data.replies import clean_prose
from judo.data.store import read_rows
from judo.data.teacher import TeacherClient
from judo.data.teacher_prompts import stage3_messages
from judo.images import load_image, load_mask
from judo.mmad import DomainKnowledge, Question, Sample, load_mmad, question_key
from judo.prompts import format_options, inspection_prompt
from judo.render import RED, fit_within, outline_mask

log = logging.getLogger(__name__)


@dataclass
class Stage3Options:
    mmad_root: str
    stage1: str  # the stage-1 output folder
    out: str
    limit: int | None = None
    teacher_max_side: int = 1024


@dataclass(frozen=True)
class Stage3Item:
    sample: Sample
    q_index: int
    question: Question
    template_path: Path
    explanation: str
    seg: tuple[tuple[int, int], ...]


def _stage1_rows(stage1: Path) -> tuple[dict, dict[str, dict]]:
    manifest_path = stage1 / MANIFEST_FILE
    if not manifest_path.is_file():
        raise DataBuildError(f"{manifest_path} not found: build stage 1 first (judo data stage1 ...)")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("stage") != "stage1":
        raise DataBuildError(f"{stage1} is a {manifest.get('stage')!r} build, not stage 1")
    rows = {r["mmad_key"]: r for r in read_rows(stage1 / DATA_FILE) if r.get("mmad_key")}
    return manifest, rows


def plan(opts: Stage3Options) -> tuple[list[WorkItem], DomainKnowledge | None, dict]:
    mmad = load_mmad(opts.mmad_root)
    manifest1, rows1 = _stage1_rows(Path(opts.stage1))
    items, missing = [], []
    for key in manifest1.get("mmad_keys", []):
        row = rows1.get(key)
        sample = mmad.samples.get(key)
        if sample is None:
            raise DataBuildError(
                f"stage-1 key {key!r} is not in {mmad.root / 'mmad.json'}: "
                "stage 1 was built from another MMAD root"
            )
        if row is None:
            missing.append(key)
            continue
        template = Path(row["template"])
        template = template if template.is_absolute() else mmad.root / template
        seg = tuple(sorted((int(r), int(c)) for r, c in row["seg"]))
        for q_index, question in enumerate(sample.questions):
            items.append(
                WorkItem(
                    question_key(key, q_index),
                    Stage3Item(sample, q_index, question, template, row["explanation"], seg),
                )
            )
    if missing:
        log.warning(
            "%d stage-1 image(s) have no stage-1 row yet (failed or unfinished) and are left out: %s",
            len(missing),
            ", ".join(missing[:5]),
        )
    if not items:
        raise DataBuildError(f"no stage-1 rows with questions in {opts.stage1}; finish stage 1 first")
    if opts.limit is not None:
        items = items[: opts.limit]
    manifest = {
        "mmad_root": str(mmad.root),
        "stage1": str(Path(opts.stage1)),
        "limit": opts.limit,
        "seed": manifest1.get("seed"),
        "mmad_keys": sorted({it.payload.sample.key for it in items}),
        "question_keys": [it.id for it in items],
    }
    return items, mmad.knowledge, manifest


def teacher_request(item: Stage3Item, knowledge: DomainKnowledge | None, max_side: int):
    """The teacher's request plus the loaded query and template (reused for the student prompt)."""
    s, q = item.sample, item.question
    query, template = load_image(s.image_path), load_image(item.template_path)
    outlined = outline_mask(query, load_mask(s.mask_path, size=query.size), RED) if s.mask_path else query
    messages = stage3_messages(
        fit_within(outlined, max_side),
        fit_within(template, max_side),
        category=s.category,
        defect=s.defect,
        question=q.text,
        options_text=format_options(q.options),
        answer_letter=q.answer,
        answer_text=q.options.get(q.answer, ""),
        explanation=item.explanation,
        knowledge=knowledge.text_for(s.dataset, s.category) if knowledge else None,
    )
    return messages, query, template


def make_worker(build: Build, knowledge: DomainKnowledge | None, *, max_side: int):
    def work(witem: WorkItem) -> list[dict]:
        item: Stage3Item = witem.payload
        s, q = item.sample, item.question
        messages, query, template = teacher_request(item, knowledge, max_side)
        rationale = clean_prose(build.ask(witem.id, "rationale", messages).text)
        prompt = inspection_prompt(query, template, q.text, q.options, style="judo")
        return [
            {
                "prompt": prompt.messages,
                "images": [build.save_image(img) for img in prompt.images],
                "answer": q.answer,
                "seg": [list(cell) for cell in item.seg],
                "rationale": rationale,
                "options": json.dumps(q.options, ensure_ascii=False),
                "question": q.text,
                "type": q.type,
                "subtask": q.subtask,
                "question_key": witem.id,
                "mmad_key": s.key,
                "dataset": s.dataset,
                "category": s.category,
                "defect": s.defect,
            }
        ]

    return work


def build_stage3(opts: Stage3Options, client: TeacherClient, *, dry_run: bool = False) -> BuildSummary | None:
    items, knowledge, manifest = plan(opts)
    if dry_run:
        for witem in items:
            messages, _, _ = teacher_request(witem.payload, knowledge, opts.teacher_max_side)
            print_dry_run(client, witem, [("rationale", messages)])
        return None
    return run_stage(
        opts.out,
        "stage3",
        client,
        manifest,
        items,
        lambda build: make_worker(build, knowledge, max_side=opts.teacher_max_side),
        desc="stage 3",
    )
