"""MMAD data model: typed records for `mmad.json` and `domain_knowledge.json` under an MMAD root.

Why typed records: the evaluator, the data builders and the app all walk the same benchmark; one loader
that validates the files once (and says which file and entry is wrong) keeps every consumer free of
KeyErrors from deep inside a 40k-question JSON. Layout facts: see the MMAD paper / repository; the
generator in judo.synthetic writes the same layout for tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: MMAD question types as scored (the keys of the score table), in the paper's column order.
SUBTASKS: tuple[str, ...] = (
    "Anomaly Detection",
    "Defect Classification",
    "Defect Localization",
    "Defect Description",
    "Defect Analysis",
    "Object Classification",
    "Object Analysis",
)
#: The paper's column titles for the scoring keys.
SUBTASK_LABELS: dict[str, str] = {
    "Anomaly Detection": "Anomaly Discrimination",
    "Defect Classification": "Defect Classification",
    "Defect Localization": "Defect Localization",
    "Defect Description": "Defect Description",
    "Defect Analysis": "Defect Analysis",
    "Object Classification": "Object Classification",
    "Object Analysis": "Object Analysis",
}
#: The four sub-datasets (first part of every mmad.json key), i.e. the rows of the score table.
DATASETS: tuple[str, ...] = ("DS-MVTec", "MVTec-LOCO", "VisA", "GoodsAD")
#: domain_knowledge.json names DS-MVTec's categories under plain "MVTec".
KNOWLEDGE_DATASET: dict[str, str] = {"DS-MVTec": "MVTec"}

_MERGED = {"Object Structure": "Object Analysis", "Object Details": "Object Analysis"}
_MAX_LISTED = 20  # problems spelled out in one error message; the rest are counted


def subtask_of(question_type: str) -> str:
    """The scoring column of a question type: MMAD merges Object Structure/Details into Object Analysis.

    Unknown types are returned unchanged (MMAD's scorer would give them a column of their own).
    """
    return _MERGED.get(question_type, question_type)


def question_key(sample_key: str, q_index: int) -> str:
    """Stable id of one question: the image key and the question's position in its conversation."""
    return f"{sample_key}#{int(q_index)}"


def knowledge_dataset(dataset: str) -> str:
    """The dataset key used in domain_knowledge.json for an mmad.json dataset name."""
    return KNOWLEDGE_DATASET.get(dataset, dataset)


class MMADError(RuntimeError):
    """A missing or malformed MMAD file. The message names the path and every problem found."""

    def __init__(self, path: Path | str, problems: list[str] | str) -> None:
        self.path = Path(path)
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        listed = self.problems[:_MAX_LISTED]
        more = len(self.problems) - len(listed)
        if len(listed) == 1 and not more:
            message = f"{self.path}: {listed[0]}"
        else:
            lines = [f"{self.path}: {len(self.problems)} problems:"] + [f"  - {p}" for p in listed]
            if more:
                lines.append(f"  ... and {more} more")
            message = "\n".join(lines)
        super().__init__(message)


# ---------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Question:
    """One multiple-choice question about one image."""

    text: str
    options: dict[str, str]  # letter -> option text, in letter order
    answer: str  # the correct letter
    type: str  # MMAD's type, e.g. "Object Structure"
    annotation: bool = True
    index: int = 0  # position in the image's conversation

    @property
    def subtask(self) -> str:
        return subtask_of(self.type)


@dataclass
class Sample:
    """One query image with its templates and questions. Paths are absolute (root-joined)."""

    key: str
    dataset: str
    category: str
    defect: str  # the folder under image/: "good" for normal images
    image_path: Path
    mask_path: Path | None
    similar_templates: list[Path] = field(default_factory=list)
    random_templates: list[Path] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)

    @property
    def is_normal(self) -> bool:
        return self.defect == "good"


@dataclass(frozen=True)
class KnowledgeEntry:
    dataset: str  # the knowledge file's key (MVTec, not DS-MVTec)
    category: str
    defect: str
    text: str


@dataclass
class DomainKnowledge:
    """MMAD's domain_knowledge.json: {dataset: {category: {defect_or_good: text}}}."""

    entries: dict[str, dict[str, dict[str, str]]]

    def for_category(self, dataset: str, category: str) -> dict[str, str]:
        """Texts by defect name for a category ({} when unknown); accepts DS-MVTec or MVTec."""
        return dict(self.entries.get(knowledge_dataset(dataset), {}).get(category, {}))

    def text_for(self, dataset: str, category: str) -> str:
        """MMAD's oracle RAG text: every text of the category joined by newlines ("" when unknown)."""
        return "\n".join(self.for_category(dataset, category).values())

    def all_entries(self) -> list[KnowledgeEntry]:
        return [
            KnowledgeEntry(ds, cat, defect, text)
            for ds, cats in self.entries.items()
            for cat, defects in cats.items()
            for defect, text in defects.items()
        ]


@dataclass
class MMADRoot:
    root: Path
    samples: dict[str, Sample]
    knowledge: DomainKnowledge | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def iter_questions(self) -> Iterator[tuple[Sample, Question]]:
        """Every (sample, question) pair, in file order."""
        for sample in self.samples.values():
            for question in sample.questions:
                yield sample, question

    def categories(self) -> dict[str, list[str]]:
        """dataset -> sorted category names present in mmad.json."""
        out: dict[str, set[str]] = {}
        for s in self.samples.values():
            out.setdefault(s.dataset, set()).add(s.category)
        return {ds: sorted(cats) for ds, cats in out.items()}


# ---------------------------------------------------------------------------------------------- loading


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise MMADError(
            path, f"{what} not found" + (" (is this an MMAD root?)" if what == "mmad.json" else "")
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MMADError(path, f"cannot read {what}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MMADError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc


def load_knowledge(path: Path | str) -> DomainKnowledge:
    """Read and validate a domain_knowledge.json file."""
    path = Path(path)
    data = _read_json(path, "domain_knowledge.json")
    problems: list[str] = []
    if not isinstance(data, dict):
        raise MMADError(path, f"expected an object of datasets, got {type(data).__name__}")
    for ds, cats in data.items():
        if not isinstance(cats, dict):
            problems.append(f"[{ds!r}] should map categories to defects, got {type(cats).__name__}")
            continue
        for cat, defects in cats.items():
            if not isinstance(defects, dict):
                problems.append(f"[{ds!r}][{cat!r}] should map defect names to texts")
                continue
            for defect, text in defects.items():
                if not isinstance(text, str):
                    problems.append(
                        f"[{ds!r}][{cat!r}][{defect!r}] should be a text, got {type(text).__name__}"
                    )
    if problems:
        raise MMADError(path, problems)
    return DomainKnowledge(entries=data)


def _parse_question(raw: Any, where: str, index: int, problems: list[str]) -> Question | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: should be an object, got {type(raw).__name__}")
        return None
    missing = [k for k in ("Question", "Answer", "Options", "type") if k not in raw]
    if missing:
        problems.append(f"{where}: missing {', '.join(repr(k) for k in missing)}")
        return None
    options = raw["Options"]
    if (
        not isinstance(options, dict)
        or not options
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in options.items())
    ):
        problems.append(f"{where}: 'Options' should be a non-empty object of letter -> text")
        return None
    if not isinstance(raw["Question"], str) or not isinstance(raw["type"], str):
        problems.append(f"{where}: 'Question' and 'type' should be texts")
        return None
    answer = raw["Answer"]
    if not isinstance(answer, str):
        problems.append(f"{where}: 'Answer' should be a letter, got {answer!r}")
        return None
    return Question(
        text=raw["Question"],
        options={k: options[k] for k in sorted(options)},
        answer=answer.strip(),
        type=raw["type"],
        annotation=bool(raw.get("annotation", True)),
        index=index,
    )


def _template_list(raw: Any, where: str, name: str, problems: list[str]) -> list[str]:
    value = raw.get(name, [])
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: {name!r} should be a list of paths")
        return []
    return value


def _parse_sample(root: Path, key: str, raw: Any, problems: list[str]) -> Sample | None:
    where = f"entry {key!r}"
    parts = key.split("/")
    if len(parts) < 3:
        problems.append(f"{where}: key should look like '<dataset>/<category>/image/<defect>/<file>'")
        return None
    if not isinstance(raw, dict):
        problems.append(f"{where}: should be an object, got {type(raw).__name__}")
        return None
    image_path, conversation = raw.get("image_path"), raw.get("conversation")
    if not isinstance(image_path, str) or not image_path:
        problems.append(f"{where}: missing 'image_path'")
        return None
    if not isinstance(conversation, list):
        problems.append(f"{where}: missing 'conversation' (a list of questions)")
        return None
    mask = raw.get("mask_path") or None
    if mask is not None and not isinstance(mask, str):
        problems.append(f"{where}: 'mask_path' should be a path or empty")
        return None
    dataset, category = parts[0], parts[1]
    base = root / dataset / category
    questions = [
        q
        for i, item in enumerate(conversation)
        if (q := _parse_question(item, f"{where} conversation[{i}]", i, problems)) is not None
    ]
    return Sample(
        key=key,
        dataset=dataset,
        category=category,
        defect=Path(image_path).parent.name or parts[-2],
        image_path=base / image_path,
        mask_path=base / mask if mask else None,
        similar_templates=[root / t for t in _template_list(raw, where, "similar_templates", problems)],
        random_templates=[root / t for t in _template_list(raw, where, "random_templates", problems)],
        questions=questions,
    )


def _missing_files(root: Path, samples: dict[str, Sample]) -> list[str]:
    missing: list[str] = []
    seen: set[Path] = set()
    for key, s in samples.items():
        paths = [("image", s.image_path)] + ([("mask", s.mask_path)] if s.mask_path else [])
        paths += [("template", t) for t in s.similar_templates + s.random_templates]
        for what, path in paths:
            if path in seen:
                continue
            seen.add(path)
            if not path.is_file():
                missing.append(f"{what} file {path.relative_to(root)} (entry {key!r}) does not exist")
    return missing


def load_mmad(
    root: Path | str, *, check_files: bool = False, knowledge: Path | str | None = None
) -> MMADRoot:
    """Load `<root>/mmad.json` and domain knowledge into typed records.

    Domain knowledge comes from `knowledge` when given (MMAD ships domain_knowledge.json in its code
    repository, not with the images), else from `<root>/domain_knowledge.json` when present.
    Every structural problem is collected and raised as one MMADError naming mmad.json; with
    `check_files=True` every referenced image, mask and template must exist, and all missing files
    are reported together.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MMADError(root, "MMAD root folder not found (it should contain mmad.json)")
    path = root / "mmad.json"
    data = _read_json(path, "mmad.json")
    if not isinstance(data, dict):
        raise MMADError(path, f"expected an object keyed by image path, got {type(data).__name__}")
    if not data:
        raise MMADError(path, "contains no samples")
    problems: list[str] = []
    samples: dict[str, Sample] = {}
    for key, raw in data.items():
        sample = _parse_sample(root, key, raw, problems)
        if sample is not None:
            samples[key] = sample
    if problems:
        raise MMADError(path, problems)
    if check_files:
        missing = _missing_files(root, samples)
        if missing:
            raise MMADError(root, missing)
    knowledge_path = Path(knowledge) if knowledge is not None else root / "domain_knowledge.json"
    loaded = load_knowledge(knowledge_path) if knowledge is not None or knowledge_path.exists() else None
    return MMADRoot(root=root, samples=samples, knowledge=loaded)
