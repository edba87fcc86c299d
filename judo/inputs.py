"""The rules a question and its options must follow, the same for the app, `judo inspect` and `judo eval`.

Every inspection goes through `judo.engines.InspectionRequest`, which applies `check_question` and
`check_options`; the app and the CLI read typed option lines with `parse_options`. The limits bound
what a client can make the model read (the prompt pass grows with the text) and what a record holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

MAX_QUESTION_CHARS = 2000
MAX_OPTIONS = 5  # MMAD answers are A-E
MAX_OPTION_CHARS = 300  # MMAD's longest option texts are ~150 characters
_OPTION_LINE = re.compile(r"^\s*\(?([A-Za-z])\s*[.):]\s*(.*\S)\s*$")


class InputError(ValueError):
    """A question or options that cannot be asked; the message is one sentence for the user."""


class OptionsError(InputError):
    """The options text cannot be read; the message says which line and how to write it."""


def check_question(text: object) -> str:
    """The question stripped; empty or too long is an `InputError`."""
    question = str(text or "").strip()
    if not question:
        raise InputError("The question is empty: type a question or pick a preset.")
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError(
            f"The question is too long ({len(question)} characters, at most {MAX_QUESTION_CHARS})."
        )
    return question


def check_options(options: Mapping[object, object] | None) -> dict[str, str] | None:
    """Options as {"A": text, ...} (letters upper-cased, blanks dropped); None for a free question."""
    if options is None:
        return None
    cleaned = {str(k).strip().upper(): str(v).strip() for k, v in options.items()}
    cleaned = {k: v for k, v in cleaned.items() if k and v}
    if not cleaned:
        return None
    if len(cleaned) > MAX_OPTIONS:
        raise OptionsError(f"{len(cleaned)} options given: at most {MAX_OPTIONS} (A-E).")
    for key, value in cleaned.items():
        if len(key) != 1 or key not in "ABCDE":
            raise OptionsError(f"Option letter {key[:5]!r}: MMAD-style options use the letters A-E.")
        if len(value) > MAX_OPTION_CHARS:
            raise OptionsError(
                f"Option {key} is too long ({len(value)} characters, at most {MAX_OPTION_CHARS})."
            )
    return dict(sorted(cleaned.items()))


def _inline_options(line: str) -> list[str]:
    """MMAD's one-line form 'A. Yes. B. No.' -> ['A. Yes.', 'B. No.'] (letters in order from A); else [line]."""
    rest = line.strip()
    if not re.match(r"\(?A\s*[.):]\s", rest):
        return [line]
    parts = []
    for letter in "BCDE":
        m = re.search(rf"\s\(?{letter}\s*[.):]\s", rest)
        if m is None:
            break
        parts.append(rest[: m.start()])
        rest = rest[m.start() + 1 :]
    return [*parts, rest] if parts else [line]


def parse_options(text: str | None) -> dict[str, str] | None:
    """'A. Yes.\\nB. No.' (or on one line, 'A. Yes. B. No.') -> {'A': 'Yes.', 'B': 'No.'}; blank -> None
    (a free question).

    Lines without a letter are lettered in order, so pasting plain option texts works too.
    """
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    if len(lines) == 1:
        lines = _inline_options(lines[0])
    if not lines:
        return None
    if len(lines) > MAX_OPTIONS:
        raise OptionsError(f"{len(lines)} options given: at most {MAX_OPTIONS} (A-E).")
    out: dict[str, str] = {}
    for i, line in enumerate(lines):
        m = _OPTION_LINE.match(line)
        if m and len(line.strip()) > 2:
            key, value = m.group(1).upper(), m.group(2)
        else:
            key, value = chr(ord("A") + len(out)), line.strip()
        if key in out:
            raise OptionsError(f"Option {key} appears twice (line {i + 1}): give each option its own letter.")
        if key not in "ABCDE":
            raise OptionsError(
                f"Option letter {key} on line {i + 1}: MMAD-style options use the letters A-E."
            )
        out[key] = value
    if len(out) == 1:
        raise OptionsError("A single option is not a choice: give at least two, or clear the options.")
    return check_options(out)
