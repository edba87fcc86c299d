"""Stage 1 data: juxtaposed segmentation + comparative explanation (paper, Appendix A, stage 1).

For each chosen anomalous query (see `selection`): the `<seg>` text comes from its mask through
`judo.grid`; the teacher sees the query with the mask outlined in red, the normal template, the defect
type and the category's domain notes, and writes the comparative explanation. One row per image:

    prompt      judo.prompts.stage1_prompt(query, template)   (the student's prompt, conversational)
    completion  [{"role": "assistant", "content": "<seg> ... </seg><think> explanation </think>"}]
    images      [paths of the prompt's 448x448 images, in placeholder order]
    + metadata  mmad_key, source, dataset, category, defect, template, seg (list of [row, col]), explanation
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from PIL import Image

from judo.data.build import Build, BuildSummary, ItemSkipped, WorkItem, print_dry_run, run_stage
from judo.data.realiad import scan_realiad
from judo.data.replies import clean_prose
from judo.data.selection import (
    Stage1Item,
    check_stage1_items,
    resolve_problems,
    select_mmad_stage1,
    select_realiad_stage1,
)
from judo.data.teacher import TeacherClient
from judo.data.teacher_prompts import stage1_messages
from judo.grid import format_seg, mask_to_cells
from judo.images import load_image, load_mask
from judo.mmad import DomainKnowledge, load_mmad
from judo.prompts import stage1_prompt
from judo.render import RED, fit_within, outline_mask

log = logging.getLogger(__name__)

TEACHER_IMAGE_DIR = "teacher_images"


def completion_text(seg: str, explanation: str) -> str:
    """The stage-1 target: the seg block immediately followed by the think block (the output order)."""
    return f"{seg}<think>{explanation}</think>"


@dataclass
class Stage1Inputs:
    """What one item needs in memory: the pictures for the teacher and the student, and the truth."""

    query: Image.Image
    template: Image.Image
    outlined: Image.Image
    cells: set
    notes: str | None


def load_inputs(item: Stage1Item, knowledge: DomainKnowledge | None) -> Stage1Inputs:
    query = load_image(item.image_path)
    template = load_image(item.template_path)
    mask = load_mask(item.mask_path)
    if mask.shape != (query.height, query.width):
        raise ItemSkipped(
            f"mask {item.mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image is "
            f"{query.width}x{query.height}"
        )
    cells = mask_to_cells(mask)
    if not cells:
        raise ItemSkipped(f"mask {item.mask_path} is empty: no defect region to segment")
    notes = None
    if knowledge is not None and item.source == "mmad":
        by_defect = knowledge.for_category(item.dataset, item.category)
        notes = by_defect.get(item.defect) or knowledge.text_for(item.dataset, item.category) or None
    return Stage1Inputs(query, template, outline_mask(query, mask, RED), cells, notes)


def teacher_request(item: Stage1Item, inputs: Stage1Inputs, max_side: int) -> list[dict]:
    return stage1_messages(
        fit_within(inputs.outlined, max_side),
        fit_within(inputs.template, max_side),
        category=item.category,
        defect=item.defect,
        notes=inputs.notes,
    )


def make_worker(build: Build, knowledge: DomainKnowledge | None, *, max_side: int):
    """The per-item function run on the build's thread pool."""

    def work(witem: WorkItem) -> list[dict]:
        item: Stage1Item = witem.payload
        inputs = load_inputs(item, knowledge)
        reply = build.ask(witem.id, "explanation", teacher_request(item, inputs, max_side))
        explanation = clean_prose(reply.text)
        seg = format_seg(inputs.cells)
        prompt = stage1_prompt(inputs.query, inputs.template, category=item.category)
        return [
            {
                "prompt": prompt.messages,
                "completion": [{"role": "assistant", "content": completion_text(seg, explanation)}],
                "images": [build.save_image(img) for img in prompt.images],
                "source": item.source,
                "mmad_key": item.key if item.source == "mmad" else None,
                "key": item.key,
                "dataset": item.dataset,
                "category": item.category,
                "defect": item.defect,
                "template": item.relative(item.template_path),
                "seg": sorted([r, c] for r, c in inputs.cells),
                "explanation": explanation,
                "teacher_image": build.save_image(fit_within(inputs.outlined, max_side), TEACHER_IMAGE_DIR),
            }
        ]

    return work


def work_items(items: list[Stage1Item]) -> list[WorkItem]:
    """Item ids are the source keys (prefixed for Real-IAD, whose paths could clash with MMAD keys)."""
    return [WorkItem(it.key if it.source == "mmad" else f"Real-IAD/{it.key}", it) for it in items]


@dataclass
class Stage1Options:
    mmad_root: str
    out: str
    seed: int = 0
    per_defect: int = 1
    realiad_root: str | None = None
    realiad_per_category: int = 10
    limit: int | None = None
    skip_bad: bool = False
    teacher_max_side: int = 1024  # longer side of the images sent to the teacher


def plan(opts: Stage1Options) -> tuple[list[WorkItem], DomainKnowledge | None, dict]:
    """Choose and check the items (no teacher call). Returns items, domain knowledge, manifest part."""
    mmad = load_mmad(opts.mmad_root)
    items = select_mmad_stage1(mmad, seed=opts.seed, per_defect=opts.per_defect)
    if opts.realiad_root:
        items += select_realiad_stage1(
            scan_realiad(opts.realiad_root), seed=opts.seed, per_category=opts.realiad_per_category
        )
    if opts.limit is not None:
        items = items[: opts.limit]
    items = resolve_problems(items, check_stage1_items(items), skip_bad=opts.skip_bad, log=log)
    manifest = {
        "seed": opts.seed,
        "per_defect": opts.per_defect,
        "limit": opts.limit,
        "mmad_root": str(mmad.root),
        "realiad_root": opts.realiad_root,
        "mmad_keys": sorted(it.key for it in items if it.source == "mmad"),
        "realiad_keys": sorted(it.key for it in items if it.source == "realiad"),
    }
    return work_items(items), mmad.knowledge, manifest


def build_stage1(opts: Stage1Options, client: TeacherClient, *, dry_run: bool = False) -> BuildSummary | None:
    """Build (or resume) the stage-1 dataset in `opts.out`; with dry_run, print the requests only."""
    items, knowledge, manifest = plan(opts)
    if dry_run:
        for witem in items:
            inputs = load_inputs(witem.payload, knowledge)
            print_dry_run(
                client,
                witem,
                [("explanation", teacher_request(witem.payload, inputs, opts.teacher_max_side))],
            )
        return None
    return run_stage(
        opts.out,
        "stage1",
        client,
        manifest,
        items,
        lambda build: make_worker(build, knowledge, max_side=opts.teacher_max_side),
        desc="stage 1",
    )
