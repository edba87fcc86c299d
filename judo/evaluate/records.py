"""One record per answered question: the JSONL line `judo eval` writes, and the readers `judo score` uses.

Two input shapes are accepted, in any mix of files:
- ours: one JSON object per line with `key`, `question_key`, `question`, `type`, `options`, `answer`,
  `predicted`, `raw`, `cells`, ... (see `EvalRecord`);
- MMAD's own answer JSON (a list of `{"image", "question", "question_type", "correct_answer",
  "gpt_answer"}`), or the same objects one per line.

Duplicates: the same question (image key + question text + options) seen twice is an error by default,
because it usually means two overlapping files were passed (e.g. `run.jsonl` and its `run.rank*.jsonl`
shards). `duplicates="first"|"last"` keeps one; `"keep"` counts every copy, which is what MMAD's scorer
does with its own files when an image was re-queried.

The writer is `judo.jsonl.JsonlFile`: append-only, locked against a second run on the same file, a batch
flushed and fsync'ed before the next one starts, and a torn last line (a write cut by `kill -9`) cut off
when the file is opened again.
"""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from judo.jsonl import JsonlError, JsonlFile, read_jsonl, write_jsonl_atomically

if TYPE_CHECKING:
    from typing import Self  # Python 3.11+; annotations are not evaluated at run time

LETTERS = ("A", "B", "C", "D", "E")
DuplicatePolicy = Literal["error", "first", "last", "keep"]
DUPLICATE_POLICIES: tuple[str, ...] = ("error", "first", "last", "keep")

_OPTION_LINE = re.compile(r"^([A-E])\.\s?(.*)$")


class RecordFormatError(JsonlError):
    """A records file that is neither ours nor MMAD's answer JSON; the message names the file and line."""


class DuplicateRecordError(ValueError):
    """The same question appears more than once across the given record files."""


@dataclass
class EvalRecord:
    """One question asked to one engine, with what it answered.

    `cells` is None when the output had no `<seg>` block (or the engine produced none), an empty list for
    an explicit empty `<seg> </seg>`. `predicted` is None when no letter could be extracted.
    """

    key: str
    question: str
    type: str
    options: dict[str, str]
    answer: str
    predicted: str | None
    raw: str = ""
    question_key: str | None = None
    index: int | None = None
    cells: list[tuple[int, int]] | None = None
    latency_s: float | None = None
    engine: str | None = None
    checkpoint: str | None = None
    prompt: str | None = None
    templates: list[str] = field(default_factory=list)
    source: str = "judo"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dataset(self) -> str:
        """The score row, exactly as MMAD's scorer derives it."""
        return self.key.split("/")[0]

    @property
    def is_normal(self) -> bool:
        """MMAD's rule: an image is normal iff `good` is a substring of its key."""
        return "good" in self.key

    @property
    def parseable(self) -> bool:
        return self.predicted in LETTERS

    @property
    def correct(self) -> bool:
        return self.parseable and self.predicted == self.answer

    @property
    def uid(self) -> str:
        """Identity shared by our records and MMAD's: image key + question text + options."""
        opts = "\x1e".join(f"{k}={v.strip()}" for k, v in sorted(self.options.items()))
        return f"{self.key}\x1f{_norm_text(self.question)}\x1f{opts}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cells"] = None if self.cells is None else [list(c) for c in sorted(self.cells)]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalRecord:
        known = set(cls.__dataclass_fields__)
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = dict(kwargs.pop("extra", None) or {})
        extra.update({k: v for k, v in data.items() if k not in known})
        cells = kwargs.get("cells")
        if cells is not None:
            kwargs["cells"] = [(int(r), int(c)) for r, c in cells]
        kwargs["options"] = dict(kwargs.get("options") or {})
        return cls(**kwargs, extra=extra)


def _norm_text(text: str) -> str:
    return " ".join(text.split())


def split_mmad_question(question: Any) -> tuple[str, dict[str, str]]:
    """MMAD stores the prompt chunk `{"type": "text", "text": "Question: <q> \\nA. ..\\nB. ..\\n"}`:
    recover the question text and its options (both are needed to identify the question)."""
    text = question.get("text", "") if isinstance(question, dict) else str(question or "")
    lines = text.rstrip("\n").split("\n")
    options: dict[str, str] = {}
    while lines:
        m = _OPTION_LINE.match(lines[-1].strip())
        if not m or m.group(1) in options:
            break
        options[m.group(1)] = m.group(2).strip()
        lines.pop()
    body = "\n".join(lines).strip()
    if body.startswith("Question:"):
        body = body[len("Question:") :].strip()
    return body, dict(sorted(options.items()))


def record_from_mmad(obj: dict[str, Any]) -> EvalRecord:
    """Convert one entry of MMAD's answer JSON. `gpt_answer` may be raw text when MMAD failed to parse."""
    question, options = split_mmad_question(obj.get("question"))
    gpt = obj.get("gpt_answer")
    return EvalRecord(
        key=str(obj["image"]),
        question=question,
        type=str(obj["question_type"]),
        options=options,
        answer=str(obj["correct_answer"]),
        predicted=gpt if isinstance(gpt, str) and gpt in LETTERS else None,
        raw=gpt if isinstance(gpt, str) else json.dumps(gpt),
        source="mmad",
    )


_OURS_REQUIRED = ("key", "question", "type", "options", "answer", "predicted")
_MMAD_REQUIRED = ("image", "question_type", "correct_answer", "gpt_answer")


def parse_record(obj: Any, where: str) -> EvalRecord:
    """One JSON object, ours or MMAD's, to a record; anything else is a RecordFormatError naming `where`."""
    if not isinstance(obj, dict):
        raise RecordFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if all(k in obj for k in _MMAD_REQUIRED):
        return record_from_mmad(obj)
    if all(k in obj for k in _OURS_REQUIRED):
        try:
            return EvalRecord.from_dict(obj)
        except (TypeError, ValueError) as exc:
            raise RecordFormatError(f"{where}: malformed record: {exc}") from exc
    missing_ours = [k for k in _OURS_REQUIRED if k not in obj]
    missing_mmad = [k for k in _MMAD_REQUIRED if k not in obj]
    raise RecordFormatError(
        f"{where}: not an eval record: missing {missing_ours} for a `judo eval` record, "
        f"or {missing_mmad} for an MMAD answer entry"
    )


def expand_paths(patterns: Iterable[str | Path]) -> list[Path]:
    """Files named directly or by a glob (`run.rank*.jsonl`); a pattern that matches nothing is an error."""
    out: list[Path] = []
    for pattern in patterns:
        text = str(pattern)
        if any(ch in text for ch in "*?["):
            matches = sorted(glob.glob(text))
            if not matches:
                raise FileNotFoundError(f"no records file matches {text!r}")
            out.extend(Path(m) for m in matches)
        else:
            path = Path(text)
            if not path.is_file():
                raise FileNotFoundError(f"records file not found: {path}")
            out.append(path)
    return out


def iter_file(path: Path) -> Iterator[EvalRecord]:
    """Records of one file: a JSON list (MMAD's format) or JSON lines. A torn LAST line (no newline,
    invalid JSON: an interrupted write) is skipped with a warning; a bad line elsewhere is an error."""
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecordFormatError(f"{path}: invalid JSON: {exc}") from exc
        for i, obj in enumerate(data):
            yield parse_record(obj, f"{path}[{i}]")
        return
    try:
        rows = read_jsonl(path)
    except JsonlError as exc:
        raise RecordFormatError(str(exc)) from exc
    for lineno, obj in rows:
        yield parse_record(obj, f"{path}:{lineno}")


def dedupe(records: list[EvalRecord], policy: DuplicatePolicy = "error") -> list[EvalRecord]:
    """Apply the duplicate policy (see module docstring); order of first appearance is kept."""
    if policy not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates policy must be one of {DUPLICATE_POLICIES}, got {policy!r}")
    if policy == "keep":
        return list(records)
    seen: dict[str, int] = {}
    out: list[EvalRecord] = []
    dups: list[str] = []
    for rec in records:
        uid = rec.uid
        if uid in seen:
            dups.append(rec.question_key or f"{rec.key}: {rec.question[:60]}")
            if policy == "last":
                out[seen[uid]] = rec
            continue
        seen[uid] = len(out)
        out.append(rec)
    if dups and policy == "error":
        shown = "\n  ".join(dups[:10])
        more = f"\n  ... and {len(dups) - 10} more" if len(dups) > 10 else ""
        raise DuplicateRecordError(
            f"{len(dups)} question(s) appear more than once across the record files "
            "(overlapping files, e.g. run.jsonl together with its run.rank*.jsonl shards?):\n"
            f"  {shown}{more}\n"
            "Pass --duplicates first|last to keep one copy, "
            "or --duplicates keep to count every copy as MMAD's scorer does."
        )
    return out


def read_records(paths: Iterable[str | Path], duplicates: DuplicatePolicy = "error") -> list[EvalRecord]:
    """All records of the given files/globs, in file order, with the duplicate policy applied."""
    records: list[EvalRecord] = []
    for path in expand_paths(paths):
        records.extend(iter_file(path))
    return dedupe(records, duplicates)


class RecordWriter:
    """The records file `judo eval` appends to and resumes from (a locked `JsonlFile`).

    Opening cuts a torn tail and loads the question keys already answered (`done`); each `write()` of a
    batch is one write, flushed and fsynced, so after a crash every record is fully on disk or absent.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file = JsonlFile(self.path)
        try:
            self.discarded_bytes = self._file.torn_bytes
            self.existing = [
                parse_record(row, f"{self.path}:{n}")
                for n, row in zip(self._file.line_numbers, self._file.rows, strict=True)
            ]
            self.done: set[str] = set()
            for rec in self.existing:
                qk = rec.question_key or rec.uid
                if qk in self.done:
                    raise DuplicateRecordError(
                        f"{self.path}: question {qk} is recorded twice; the file was edited?"
                    )
                self.done.add(qk)
        except BaseException:
            self._file.close()
            raise

    def write(self, records: Iterable[EvalRecord]) -> None:
        rows = []
        for rec in records:
            qk = rec.question_key or rec.uid
            if qk in self.done:
                raise DuplicateRecordError(f"{self.path}: refusing to record {qk} twice")
            self.done.add(qk)
            rows.append(rec.to_dict())
        self._file.append(rows)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_records(path: str | Path, records: Iterable[EvalRecord]) -> Path:
    """Write a whole records file atomically (temp file + rename): used to merge rank shards."""
    return write_jsonl_atomically(path, (rec.to_dict() for rec in records))
