"""Which questions an eval run asks: filters, the training-key manifest, sharding, missing files.

Kept apart from the runner so selection is testable without a model, and so every rank of a
data-parallel run derives the same ordered list (mmad.json order, then conversation order).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from judo.mmad import MMADRoot, Question, Sample, question_key, subtask_of


class SelectionError(ValueError):
    """Bad selection input (unknown dataset/type names, unreadable manifest, too few templates)."""


@dataclass(frozen=True)
class EvalItem:
    """One question of one sample, with the template images the protocol shows next to it."""

    sample: Sample
    question: Question
    index: int
    question_key: str
    templates: tuple[Path, ...]


def read_manifest(path: str | Path) -> set[str]:
    """MMAD keys to leave out (e.g. the training images): a JSON list, a `judo data` manifest.json
    (its `mmad_keys`), or one key per line (`#` comments).

    Image keys exclude every question of that image; question keys (`key#index`) exclude one question.
    """
    path = Path(path)
    if not path.is_file():
        raise SelectionError(f"exclude manifest not found: {path}")
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SelectionError(f"{path}: invalid JSON: {exc}") from exc
        if isinstance(data, dict):  # a `judo data` manifest.json
            if not isinstance(data.get("mmad_keys"), list):
                raise SelectionError(f"{path}: a JSON object manifest needs an 'mmad_keys' list")
            data = data["mmad_keys"]
        if not all(isinstance(k, str) for k in data):
            raise SelectionError(f"{path}: the JSON list must hold strings (MMAD keys)")
        return {k.strip() for k in data if k.strip()}
    return {ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")}


def _check_names(given: Iterable[str] | None, known: set[str], what: str) -> set[str] | None:
    if not given:
        return None
    given = set(given)
    unknown = sorted(given - known)
    if unknown:
        raise SelectionError(
            f"unknown {what}: {', '.join(unknown)}; this root has: {', '.join(sorted(known))}"
        )
    return given


def select_items(
    mmad: MMADRoot,
    *,
    datasets: Iterable[str] | None = None,
    categories: Iterable[str] | None = None,
    types: Iterable[str] | None = None,
    exclude: set[str] | None = None,
    limit: int | None = None,
    template: str = "random",
    shots: int = 1,
) -> tuple[list[EvalItem], int]:
    """The ordered questions to ask, and how many were excluded by the manifest.

    `types` accepts MMAD question types or subtask names (`Object Analysis` selects Object Structure and
    Details). `limit` applies last, so rerunning the same command selects the same questions.
    """
    if shots < 1:
        raise SelectionError(f"--shots must be >= 1, got {shots}")
    if template not in ("random", "similar"):
        raise SelectionError(f"template must be 'random' or 'similar', got {template!r}")
    samples = list(mmad.samples.values())
    all_types = {q.type for s in samples for q in s.questions}
    ds_set = _check_names(datasets, {s.dataset for s in samples}, "dataset(s)")
    cat_set = _check_names(categories, {s.category for s in samples}, "categories")
    type_set = _check_names(types, all_types | {subtask_of(t) for t in all_types}, "question type(s)")
    exclude = exclude or set()
    items: list[EvalItem] = []
    excluded = 0
    for sample in samples:
        if ds_set is not None and sample.dataset not in ds_set:
            continue
        if cat_set is not None and sample.category not in cat_set:
            continue
        pool = sample.similar_templates if template == "similar" else sample.random_templates
        for q in sample.questions:
            if type_set is not None and q.type not in type_set and subtask_of(q.type) not in type_set:
                continue
            qk = question_key(sample.key, q.index)
            if sample.key in exclude or qk in exclude:
                excluded += 1
                continue
            items.append(EvalItem(sample, q, q.index, qk, tuple(pool[:shots])))
    if limit is not None:
        if limit < 1:
            raise SelectionError(f"--limit must be >= 1, got {limit}")
        items = items[:limit]
    return items, excluded


def missing_files(items: Iterable[EvalItem], shots: int = 1) -> dict[str, list[str]]:
    """Per sample key, what stops it being asked: missing query/template files, too few templates."""
    problems: dict[str, list[str]] = {}
    checked: dict[Path, bool] = {}

    def exists(p: Path) -> bool:
        if p not in checked:
            checked[p] = p.is_file()
        return checked[p]

    for item in items:
        key = item.sample.key
        if key in problems:
            continue
        msgs = []
        if not exists(item.sample.image_path):
            msgs.append(f"query image missing: {item.sample.image_path}")
        if len(item.templates) < shots:
            msgs.append(f"needs {shots} template(s), mmad.json lists {len(item.templates)}")
        msgs += [f"template missing: {t}" for t in item.templates if not exists(t)]
        if msgs:
            problems[key] = msgs
    return problems


def shard(items: list[EvalItem], rank: int, world_size: int) -> list[EvalItem]:
    """This process's share of a data-parallel run: every world_size-th question, starting at rank."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise SelectionError(f"bad RANK/WORLD_SIZE: {rank}/{world_size}")
    return items[rank::world_size]
