"""Stage 2 data: domain-knowledge Q&A (paper, Appendix A, stage 2).

For each snippet of MMAD's `domain_knowledge.json` (one per category and defect type, 146 in MMAD):

1. the teacher writes `count` (30) unique Q&A pairs grounded strictly in the snippet, mixing the
   question styles of the paper's Table 3; the JSON is validated and deduplicated, and an unusable
   or short reply gets one repair request that names the problem (then the snippet is skipped, with
   the reason in failures.jsonl, and retried by the next run);
2. the teacher writes `variants` (2) lexically different paraphrases of each pair (in chunks);
3. every original and paraphrase becomes one SFT row, shown with a random normal image of the
   category (seeded per row): prompt = judo.prompts.stage2_prompt(question, image), completion = answer.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from judo.data.build import (
    Build,
    BuildSummary,
    DataBuildError,
    ItemSkipped,
    WorkItem,
    print_dry_run,
    run_stage,
)
from judo.data.replies import ReplyFormatError, parse_json_array, validate_paraphrases, validate_qa_pairs
from judo.data.selection import rng_for, template_pools
from judo.data.teacher import TeacherClient
from judo.data.teacher_prompts import repair_messages, stage2_generation_messages, stage2_paraphrase_messages
from judo.images import load_image
from judo.mmad import KnowledgeEntry, knowledge_dataset, load_mmad
from judo.prompts import stage2_prompt

log = logging.getLogger(__name__)


@dataclass
class Stage2Options:
    mmad_root: str
    out: str
    seed: int = 0
    count: int = 30  # Q&A pairs per snippet (paper: 30)
    variants: int = 2  # paraphrases per pair (paper: 2)
    paraphrase_chunk: int = 10  # pairs per paraphrase request
    repairs: int = 1  # repair requests per teacher step before giving up
    limit: int | None = None


@dataclass(frozen=True)
class Snippet:
    entry: KnowledgeEntry
    images: tuple[Path, ...]  # normal images of the category to anchor the rows


def _knowledge_pools(mmad) -> dict[tuple[str, str], list[Path]]:
    """(knowledge dataset key, category) -> normal images (domain_knowledge.json says MVTec for DS-MVTec)."""
    pools: dict[tuple[str, str], set[Path]] = {}
    for (dataset, category), paths in template_pools(mmad).items():
        pools.setdefault((knowledge_dataset(dataset), category), set()).update(paths)
    return {k: sorted(v) for k, v in pools.items()}


def plan(opts: Stage2Options) -> tuple[list[WorkItem], dict]:
    if opts.count < 1 or opts.variants < 0 or opts.paraphrase_chunk < 1:
        raise ValueError("count and paraphrase_chunk must be >= 1 and variants >= 0")
    mmad = load_mmad(opts.mmad_root)
    if mmad.knowledge is None:
        raise DataBuildError(f"{mmad.root} has no domain_knowledge.json: stage 2 is built from it")
    entries = sorted(mmad.knowledge.all_entries(), key=lambda e: (e.dataset, e.category, e.defect))
    pools = _knowledge_pools(mmad)
    items, unanchored = [], []
    for entry in entries:
        images = pools.get((entry.dataset, entry.category))
        if not images:
            unanchored.append(f"{entry.dataset}/{entry.category}")
            continue
        items.append(
            WorkItem(f"{entry.dataset}/{entry.category}/{entry.defect}", Snippet(entry, tuple(images)))
        )
    if unanchored:
        log.warning(
            "no normal image for %d snippet(s) (category not in mmad.json): %s",
            len(unanchored),
            ", ".join(sorted(set(unanchored))[:10]),
        )
    if not items:
        raise DataBuildError(f"no domain-knowledge snippet of {mmad.root} has normal images in mmad.json")
    if opts.limit is not None:
        items = items[: opts.limit]
    manifest = {
        "seed": opts.seed,
        "count": opts.count,
        "variants": opts.variants,
        "limit": opts.limit,
        "mmad_root": str(mmad.root),
        "mmad_keys": [],
        "snippets": [it.id for it in items],
    }
    return items, manifest


class _ImageCache:
    """Saved 448x448 copies per source image: 13k rows share ~100s of images, encode each once."""

    def __init__(self, build: Build) -> None:
        self.build, self.paths, self.lock = build, {}, threading.Lock()

    def prompt_and_image(self, question: str, source: Path, category: str):
        prompt = stage2_prompt(question, load_image(source), category=category)
        with self.lock:
            saved = self.paths.get(source)
        if saved is None:
            saved = self.build.save_image(prompt.images[0])
            with self.lock:
                self.paths[source] = saved
        return prompt, saved


#: Reply budget per requested Q&A pair (a pair with its style tag is ~60-100 tokens); the generation
#: request gets at least this times `count`, so 30 pairs are never cut off by a 2048-token default.
TOKENS_PER_PAIR = 150


def _ask_json(build: Build, item_id: str, step: str, messages: list[dict], accept, repairs: int, **params):
    """Ask for JSON, then send up to `repairs` repair requests naming what was wrong.

    `accept(items) -> (result, problem or None)` validates one parsed reply (it may accumulate across
    replies). Returns the last `(result, problem)`; `problem` is None once a reply was good enough.
    """
    result, problem = None, "no reply"
    for attempt in range(repairs + 1):
        reply = build.ask(item_id, step if attempt == 0 else f"{step}-repair{attempt}", messages, **params)
        try:
            result, problem = accept(parse_json_array(reply.text))
        except ReplyFormatError as err:
            problem = str(err)
        if problem is None:
            break
        messages = repair_messages(messages, reply.text, problem)
    return result, problem


def generate_pairs(build: Build, witem: WorkItem, opts: Stage2Options) -> list[dict]:
    entry: KnowledgeEntry = witem.payload.entry
    seen: set[str] = set()
    pairs: list[dict] = []

    def accept(items: list):
        checked = validate_qa_pairs(items, seen=seen)
        pairs.extend(checked.pairs)
        if len(pairs) >= opts.count:
            return pairs[: opts.count], None
        detail = "; ".join(checked.problems[:5])
        return pairs, (
            f"only {len(pairs)} usable unique pairs of the {opts.count} asked"
            + (f" ({detail})" if detail else "")
        )

    messages = stage2_generation_messages(
        entry.text, category=entry.category, defect=entry.defect, count=opts.count
    )
    budget = max(build.client.config.max_tokens, TOKENS_PER_PAIR * opts.count)
    _, problem = _ask_json(build, witem.id, "generate", messages, accept, opts.repairs, max_tokens=budget)
    if not pairs:
        raise ItemSkipped(f"no usable Q&A pairs after {opts.repairs} repair request(s): {problem}")
    if len(pairs) < opts.count:
        log.warning("%s: keeping %d of %d pairs (%s)", witem.id, len(pairs), opts.count, problem)
    return pairs[: opts.count]


def paraphrase(build: Build, witem: WorkItem, pairs: list[dict], opts: Stage2Options) -> list[list[dict]]:
    """Paraphrases per pair (same order); a pair whose paraphrases never validate keeps none."""
    out: list[list[dict]] = [[] for _ in pairs]
    if opts.variants == 0:
        return out
    for start in range(0, len(pairs), opts.paraphrase_chunk):
        chunk = pairs[start : start + opts.paraphrase_chunk]
        found: dict[int, list[dict]] = {}

        def accept(items: list, chunk=chunk, found=found):
            got, problems = validate_paraphrases(items, chunk, variants=opts.variants)
            for pid, paras in got.items():
                found.setdefault(pid, paras)
            missing = len(chunk) - len(found)
            return found, (None if missing == 0 else "; ".join(problems[:5]))

        messages = stage2_paraphrase_messages(chunk, variants=opts.variants)
        budget = max(build.client.config.max_tokens, TOKENS_PER_PAIR * opts.variants * len(chunk))
        _ask_json(
            build,
            witem.id,
            f"paraphrase{start // opts.paraphrase_chunk}",
            messages,
            accept,
            opts.repairs,
            max_tokens=budget,
        )
        if len(found) < len(chunk):
            log.warning("%s: %d pair(s) without paraphrases", witem.id, len(chunk) - len(found))
        for pid, paras in found.items():
            out[start + pid - 1] = paras
    return out


def make_worker(build: Build, opts: Stage2Options):
    cache = _ImageCache(build)

    def work(witem: WorkItem) -> list[dict]:
        snippet: Snippet = witem.payload
        entry = snippet.entry
        pairs = generate_pairs(build, witem, opts)
        paraphrases = paraphrase(build, witem, pairs, opts)
        rows = []
        for p_index, (pair, paras) in enumerate(zip(pairs, paraphrases)):
            for variant, qa in enumerate([pair, *paras]):
                source = rng_for(opts.seed, "stage2", witem.id, p_index, variant).choice(snippet.images)
                prompt, saved = cache.prompt_and_image(qa["question"], source, entry.category)
                rows.append(
                    {
                        "prompt": prompt.messages,
                        "completion": [{"role": "assistant", "content": qa["answer"]}],
                        "images": [saved],
                        "dataset": entry.dataset,
                        "category": entry.category,
                        "defect": entry.defect,
                        "pair": p_index,
                        "variant": variant,
                        "style": pair.get("style"),
                        "question": qa["question"],
                        "answer": qa["answer"],
                        "image_source": str(source),
                    }
                )
        return rows

    return work


def build_stage2(opts: Stage2Options, client: TeacherClient, *, dry_run: bool = False) -> BuildSummary | None:
    items, manifest = plan(opts)
    if dry_run:
        example = [{"question": "<question 1 of the reply>", "answer": "<its answer>"}]
        for witem in items:
            e = witem.payload.entry
            chunk = min(opts.paraphrase_chunk, opts.count)
            print_dry_run(
                client,
                witem,
                [
                    (
                        "generate",
                        stage2_generation_messages(
                            e.text, category=e.category, defect=e.defect, count=opts.count
                        ),
                        {"max_tokens": max(client.config.max_tokens, TOKENS_PER_PAIR * opts.count)},
                    ),
                    (
                        "paraphrase (built from the reply; placeholder pairs shown)",
                        stage2_paraphrase_messages(example, variants=opts.variants),
                        {
                            "max_tokens": max(
                                client.config.max_tokens, TOKENS_PER_PAIR * opts.variants * chunk
                            )
                        },
                    ),
                ],
            )
        return None
    return run_stage(
        opts.out, "stage2", client, manifest, items, lambda build: make_worker(build, opts), desc="stage 2"
    )
