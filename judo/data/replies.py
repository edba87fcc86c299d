"""Turning teacher replies into clean training text, or a precise reason why not.

Teachers wrap JSON in code fences, add a sentence before it, return objects instead of arrays, repeat
questions or slip in "according to the snippet". Each check here returns the usable part and a list of
problems; the builders decide whether to ask again (with the problem spelled out) or to skip the item.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

#: Phrases that betray the source text; the paper's Table 3 forbids them in Q&A pairs.
SOURCE_REFERENCES = re.compile(
    r"\b(snippets?|passages?|the (given|provided|above) (text|description|information|knowledge)"
    r"|according to the (text|description|information|knowledge))\b",
    re.I,
)
_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*|\s*```\s*$")
_TAGS = re.compile(r"</?(seg|think|answer)>", re.I)


class ReplyFormatError(ValueError):
    """The reply cannot be read as the requested structure; the message is sent back to the teacher."""


def parse_json_array(text: str) -> list:
    """The JSON array in a reply: tolerates code fences, prose around it and `{"pairs": [...]}` wrappers."""
    if not text or not text.strip():
        raise ReplyFormatError("the reply was empty")
    body = _FENCE.sub("", text.strip())
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        start, end = body.find("["), body.rfind("]")
        if start < 0 or end <= start:
            raise ReplyFormatError("the reply contains no JSON array") from None
        try:
            value = json.loads(body[start : end + 1])
        except json.JSONDecodeError as err:
            raise ReplyFormatError(
                f"the JSON array is malformed ({err.msg} at character {err.pos})"
            ) from None
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list)]
        if len(lists) == 1:
            value = lists[0]
    if not isinstance(value, list):
        raise ReplyFormatError(f"expected a JSON array, got a JSON {type(value).__name__}")
    return value


def normalise_question(text: str) -> str:
    """Key for duplicate detection: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


@dataclass
class QAResult:
    pairs: list[dict] = field(default_factory=list)  # {"question", "answer", "style"}
    problems: list[str] = field(default_factory=list)


def _clean(value: object) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def validate_qa_pairs(items: list, *, seen: set[str] | None = None) -> QAResult:
    """Keep well-formed, source-free, unique pairs. `seen` (normalised questions) is updated in place,
    so duplicates across several replies for one snippet are caught too."""
    seen = set() if seen is None else seen
    out = QAResult()
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            out.problems.append(f"item {i} is not an object")
            continue
        question, answer = _clean(item.get("question")), _clean(item.get("answer"))
        if not question or not answer:
            out.problems.append(f"item {i} lacks a non-empty question or answer")
            continue
        if SOURCE_REFERENCES.search(question) or SOURCE_REFERENCES.search(answer):
            out.problems.append(f"item {i} refers to the source text")
            continue
        key = normalise_question(question)
        if key in seen:
            out.problems.append(f"item {i} repeats an earlier question")
            continue
        seen.add(key)
        style = _clean(item.get("style")).lower() or None
        out.pairs.append({"question": question, "answer": answer, "style": style})
    return out


def validate_paraphrases(
    items: list, originals: list[dict], *, variants: int = 2
) -> tuple[dict[int, list[dict]], list[str]]:
    """Map 1-based pair id -> its `variants` paraphrases; pairs with fewer usable ones are left out.

    A paraphrase is usable when it has both fields, does not refer to the source and its question
    differs (after normalisation) from the original and from the other paraphrases of the pair.
    """
    found: dict[int, list[dict]] = {}
    problems: list[str] = []
    for entry in items:
        if not isinstance(entry, dict) or not isinstance(entry.get("paraphrases"), list):
            problems.append("an entry lacks a 'paraphrases' list")
            continue
        try:
            pid = int(entry.get("id"))
        except (TypeError, ValueError):
            problems.append("an entry lacks a numeric 'id'")
            continue
        if not 1 <= pid <= len(originals) or pid in found:
            problems.append(f"unexpected or repeated id {pid}")
            continue
        keys = {normalise_question(originals[pid - 1]["question"])}
        usable = []
        for para in entry["paraphrases"]:
            q = _clean(para.get("question")) if isinstance(para, dict) else ""
            a = _clean(para.get("answer")) if isinstance(para, dict) else ""
            key = normalise_question(q)
            if q and a and key not in keys and not SOURCE_REFERENCES.search(q + " " + a):
                keys.add(key)
                usable.append({"question": q, "answer": a})
        if len(usable) >= variants:
            found[pid] = usable[:variants]
        else:
            problems.append(f"pair {pid} has {len(usable)} usable paraphrase(s), {variants} needed")
    missing = [i for i in range(1, len(originals) + 1) if i not in found]
    if missing:
        problems.append("no usable paraphrases for pair(s) " + ", ".join(map(str, missing[:10])))
    return found, problems


def clean_prose(text: str, *, min_chars: int = 20) -> str:
    """Teacher prose ready for a `<think>` block: no fences or output tags, one paragraph.

    Raises ReplyFormatError when nothing usable is left (empty, or too short to be an explanation).
    """
    body = _TAGS.sub("", _FENCE.sub("", (text or "").strip()))
    body = " ".join(body.split()).strip().strip('"').strip()
    if len(body) < min_chars:
        raise ReplyFormatError(f"the reply is too short to use ({len(body)} characters)")
    return body
