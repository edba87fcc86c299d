"""The GRPO rewards of JUDO's stage 3 (and of the "Base GRPO" ablation) as TRL reward functions.

TRL 1.16 calls every reward as `f(prompts=..., completions=..., completion_ids=..., **columns)`, where a
completion is a string (standard datasets) or `[{"role": "assistant", "content": str}]`
(conversational datasets), and `columns` holds every other dataset column, already repeated once per
generation, plus `trainer_state`, `log_metric` and `log_extra`. Each function here accepts both
completion shapes, ignores what it does not need, and returns one float per completion.

The truth comes from three dataset columns:
    answer     the correct option letter ("B")
    seg        the true anomalous cells: a list of [row, col] pairs (or tuples, or that list as a JSON
               string, or seg text), empty for a normal image
    rationale  the teacher's pseudo-domain rationale for the question

A reward never raises on a malformed completion (that is what it scores, with 0 or a penalty); a
missing or malformed truth column is a dataset bug and raises `RewardInputError` naming the column.

Parsing is never done here: cells come from `judo.grid`, the tags and the answer letter from
`judo.response`, embeddings from `judo.embedding`. Registry: `REWARDS` (name -> function) and
`get_rewards(names)`, which the recipes use (it also takes `package.module:function` for own rewards).

Rewards (the paper's five, then the ablation's two):
    domain_reward      cos(MiniLM(<think>), MiniLM(rationale)) if >= 0.5, else 0; 0 without a closed <think>
    seg_reward         0 malformed/missing <seg>; 1 both empty; 0.2 + 0.8*F1 both non-empty; 0 otherwise
    choice_reward      1 if the letter in <answer> is the true letter, else 0
    format_reward      1 if exactly <seg>..</seg><think>..</think><answer>..</answer>, else 0
    structure_reward   +0.5 the reasoning's conclusion agrees with <answer>, +0.5 more if that answer is
                       correct, -0.5 if an option letter is committed to in the first half; in [-0.5, 1]
    base_format_reward 1 if exactly <think>..</think><answer>..</answer>, else 0 (AnomalyR1's format)
    base_answer_reward 1 if the letter in <answer> is the true letter, else 0 (AnomalyR1's accuracy)
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from judo import grid
from judo.embedding import Embedder, cosine, get_embedder
from judo.response import ParsedResponse, parse_response

RewardFn = Callable[..., list[float]]

DOMAIN_THRESHOLD = 0.5
SEG_FLOOR, SEG_F1_WEIGHT = 0.2, 0.8
STRUCTURE_AGREE = 0.5  # the reasoning's final conclusion is the letter in <answer>
STRUCTURE_CORRECT = 0.5  # ... and that letter is right
STRUCTURE_EARLY = -0.5  # an option letter committed to in the first half of the reasoning
EARLY_FRACTION = 0.5  # "first half": letter position < 0.5 * len(think)
CONCLUSION_FRACTION = 2 / 3  # "last third": position >= 2/3 * len(think)
DEFAULT_LETTERS = "ABCDE"  # MMAD questions have at most five options


class RewardInputError(ValueError):
    """A truth column is missing or malformed (a dataset problem, not a model problem)."""


# --------------------------------------------------------------------------- completion & columns
def completion_text(completion: Any) -> str:
    """The generated text of one completion in either TRL shape; "" for anything unreadable."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content_text(completion.get("content"))
    if isinstance(completion, (list, tuple)):
        return "".join(
            _content_text(m.get("content"))
            for m in completion
            if isinstance(m, dict) and m.get("role", "assistant") == "assistant"
        )
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal content parts
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _column(values: Any, name: str, n: int, reward: str) -> list:
    if values is None:
        raise RewardInputError(f"{reward} needs the dataset column '{name}' (one value per completion)")
    values = list(values)
    if len(values) != n:
        raise RewardInputError(f"{reward}: column '{name}' has {len(values)} values for {n} completions")
    return values


def truth_letter(value: Any) -> str:
    """The answer column as one upper-case letter; accepts "B", " b", "B.", "(B)"."""
    letter = value.strip().strip("().").strip().upper() if isinstance(value, str) else ""
    if len(letter) != 1 or not "A" <= letter <= "Z":
        raise RewardInputError(f"answer must be an option letter such as 'B', got {value!r}")
    return letter


def truth_cells(value: Any) -> set[grid.Cell]:
    """The seg column as cells: a list of [row, col] (lists or tuples), that list as JSON, seg text
    ("<seg> (1,2)-(1,4) </seg>"), or None/""/[] for a normal image."""
    if value is None:
        return set()
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return set()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError as err:
                raise RewardInputError(f"seg column holds invalid JSON: {text[:80]!r}") from err
        else:
            try:
                return grid.parse_seg(text, strict=True)
            except grid.SegFormatError as err:
                raise RewardInputError(f"seg column holds invalid seg text {text[:80]!r}: {err}") from err
    try:
        pairs = [tuple(cell) for cell in value]
    except TypeError:
        raise RewardInputError(f"seg must be a list of [row, col] cells, got {value!r:.80}") from None
    cells = set()
    for pair in pairs:
        if len(pair) != 2 or not all(_is_index(v) for v in pair):
            raise RewardInputError(
                f"seg cell {pair!r} is not [row, col] with integers 0..{grid.GRID_SIZE - 1}"
            )
        cells.add((int(pair[0]), int(pair[1])))
    return cells


def _is_index(v: Any) -> bool:
    try:
        return not isinstance(v, bool) and int(v) == v and 0 <= int(v) < grid.GRID_SIZE
    except (TypeError, ValueError):
        return False


def _options(value: Any) -> dict[str, str] | None:
    """An optional `options` column entry (dict or JSON) as {letter: text}; None when unusable.
    Arrow turns per-row dicts into structs with None for letters a row lacks: those are dropped."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, dict):
        return None
    out = {str(k).strip().upper(): v.strip() for k, v in value.items() if isinstance(v, str) and v.strip()}
    return {k: v for k, v in out.items() if len(k) == 1 and "A" <= k <= "Z"} or None


@functools.lru_cache(maxsize=4096)
def _parse_text(text: str) -> ParsedResponse:
    """Every reward reads the same 128 completions of a batch: parse each text once (the views are
    never modified)."""
    return parse_response(text)


def _parse(completions: Sequence[Any]) -> list[ParsedResponse]:
    return [_parse_text(completion_text(c)) for c in completions]


# --------------------------------------------------------------------------- domain
_embedder_override: Embedder | None = None


def set_embedder(embedder: Embedder | None) -> None:
    """Make `domain_reward` use `embedder` (anything with SentenceTransformer's `encode`); None goes
    back to the process's MiniLM from `judo.embedding.get_embedder()`."""
    global _embedder_override
    _embedder_override = embedder


def _domain_scores(
    completions: Sequence[Any], rationale: Any, embedder: Embedder | None, log_metric: Any = None
) -> list[float]:
    n = len(completions)
    rationales = _column(rationale, "rationale", n, "domain_reward")
    thinks: list[str] = []
    refs: list[str] = []
    rows: list[int] = []
    for i, parsed in enumerate(_parse(completions)):
        ref = rationales[i] if isinstance(rationales[i], str) else ""
        if parsed.think is not None and parsed.think_closed and parsed.think.strip() and ref.strip():
            rows.append(i)
            thinks.append(parsed.think.strip())
            refs.append(ref.strip())
    scores = [0.0] * n
    if rows:  # one encode call for every think and rationale of the batch
        sims = cosine(thinks, refs, embedder=embedder if embedder is not None else get_embedder())
        for i, sim in zip(rows, sims.tolist()):
            scores[i] = float(sim) if sim >= DOMAIN_THRESHOLD else 0.0
        if callable(log_metric):  # TRL's hook: shows whether the 0.5 threshold zeroes most completions
            log_metric("domain_reward/raw_cosine", float(sims.mean()))
            log_metric("domain_reward/below_threshold", float((sims < DOMAIN_THRESHOLD).mean()))
    return scores


def domain_reward(
    completions: Sequence[Any], rationale: Sequence[str] | None = None, **kwargs: Any
) -> list[float]:
    """Domain reasoning: r = cos(e(think), e(rationale)) if that is >= 0.5, else 0.

    e() is all-MiniLM-L6-v2 with normalised embeddings; think is the text inside a closed
    `<think>..</think>` (no closed think, or an empty rationale: 0). The model is loaded once per
    process on its device (`judo.embedding.get_embedder`) unless `set_embedder` injected another.
    With TRL's `log_metric` it also logs the mean raw cosine and the share below the threshold.
    """
    return _domain_scores(completions, rationale, _embedder_override, kwargs.get("log_metric"))


def make_domain_reward(embedder: Embedder) -> RewardFn:
    """`domain_reward` bound to a given embedder (for tests or a shared model); same name in TRL logs."""

    def bound(
        completions: Sequence[Any], rationale: Sequence[str] | None = None, **kwargs: Any
    ) -> list[float]:
        return _domain_scores(completions, rationale, embedder, kwargs.get("log_metric"))

    functools.update_wrapper(bound, domain_reward)
    return bound


# --------------------------------------------------------------------------- segmentation
def _seg_score(text: str, truth: set[grid.Cell]) -> float:
    try:  # strict: exactly one <seg> and </seg>, a well-formed body, every cell in range
        pred = grid.parse_seg(text, strict=True)
    except grid.SegFormatError:
        return 0.0
    if not pred and not truth:
        return 1.0
    if pred and truth:
        return SEG_FLOOR + SEG_F1_WEIGHT * grid.seg_f1(pred, truth)
    return 0.0


def seg_reward(completions: Sequence[Any], seg: Sequence[Any] | None = None, **kwargs: Any) -> list[float]:
    """Segmentation: r = 0 if the `<seg>` block is missing, unclosed or malformed (strict
    `judo.grid.parse_seg` raises); 1 if prediction and truth are both empty; 0.2 + 0.8 * F1(pred, truth)
    if both are non-empty; 0 otherwise (one empty, the other not).

    The 0.2 floor rewards daring to localise at all on a defective image, so the policy does not
    collapse to the always-empty seg that is right on every normal image.
    """
    truths = [truth_cells(v) for v in _column(seg, "seg", len(completions), "seg_reward")]
    return [_seg_score(completion_text(c), t) for c, t in zip(completions, truths)]


# --------------------------------------------------------------------------- answer & format
def tagged_answer(parsed: ParsedResponse) -> str | None:
    """The letter inside a closed `<answer>..</answer>` (as `judo.response` reads it), else None: a
    letter that only appears in the reasoning, or in an answer cut off by the length limit, is no
    answer."""
    if parsed.answer_tagged and parsed.answer_closed and parsed.answer:
        return parsed.answer.upper()
    return None


def _answer_scores(completions: Sequence[Any], answer: Any, reward: str) -> list[float]:
    truths = [truth_letter(v) for v in _column(answer, "answer", len(completions), reward)]
    return [1.0 if tagged_answer(p) == t else 0.0 for p, t in zip(_parse(completions), truths)]


def choice_reward(
    completions: Sequence[Any], answer: Sequence[str] | None = None, **kwargs: Any
) -> list[float]:
    """Choice: r = 1 if the option letter inside `<answer>..</answer>` equals the true letter, else 0.
    Only a closed tag counts: a letter merely mentioned in the reasoning earns nothing. Inside the tag
    `judo.response` reads "B", "B.", "(B)", "B. Scratch", "Answer: B"."""
    return _answer_scores(completions, answer, "choice_reward")


def format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """Format: r = 1 if the completion is exactly `<seg>..</seg><think>..</think><answer>..</answer>`
    in that order (`judo.response` `format_ok`), else 0."""
    return [1.0 if p.format_ok else 0.0 for p in _parse(completions)]


_BASE_FORMAT = re.compile(
    r"\s*<think>(?P<think>.*?)</think>\s*<answer>(?P<answer>.*?)</answer>\s*", re.DOTALL
)
_ANY_TAG = re.compile(r"</?(?:seg|think|answer)>")


def base_format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """Base GRPO format (AnomalyR1): r = 1 if the completion is exactly
    `<think>..</think><answer>..</answer>` (whitespace around the blocks allowed, both non-empty, no
    other seg/think/answer tag anywhere), else 0."""
    scores = []
    for c in completions:
        m = _BASE_FORMAT.fullmatch(completion_text(c))
        ok = (
            m is not None
            and m["think"].strip() != ""
            and m["answer"].strip() != ""
            and not _ANY_TAG.search(m["think"] + m["answer"])
        )
        scores.append(1.0 if ok else 0.0)
    return scores


def base_answer_reward(
    completions: Sequence[Any], answer: Sequence[str] | None = None, **kwargs: Any
) -> list[float]:
    """Base GRPO accuracy (AnomalyR1): r = 1 if the letter inside `<answer>` is the true letter, else 0.
    Same rule as `choice_reward`, kept under its own name so the ablation's logs read as its recipe."""
    return _answer_scores(completions, answer, "base_answer_reward")


# --------------------------------------------------------------------------- reasoning structure
@functools.lru_cache(maxsize=32)
def _commitment_patterns(letters: str) -> tuple[re.Pattern, ...]:
    """Phrases that commit to an option letter; group 1 is the letter. Letters are upper case only,
    so the article "a" never counts, and a capital "A" counts only in a committing phrase."""
    L = f"[{letters}]"
    end = r"(?![A-Za-z0-9])"
    return (
        # "the answer is B", "answer: (C)", "option B", "choice D", "options A and", "choose B", "go with option C"
        re.compile(
            r"(?i:\b(?:answers?|options?|choices?)\b(?:\s+(?:is|would\s+be|should\s+be|must\s+be|will\s+be))?"
            r"|\b(?:choose|select|pick|go\s+with)\b(?:\s+options?)?)"
            rf"\s*[:=\-]?\s*\(?({L})\)?{end}"
        ),
        # "(B)"
        re.compile(rf"\(({L})\)"),
        # "B." / "B)" / "B:" opening a sentence or line: "... template. B. Scratch fits"
        re.compile(rf"(?:^|[.!?:;\n])\s*({L})[.):](?=\s|$)"),
        # a verdict: "so it is B.", "Thus B.", "therefore (C)"
        re.compile(rf"(?i:\b(?:is|be|thus|therefore|hence|so))\s*[:,]?\s+\(?({L})\)?(?=\s*(?:[.!;,]|$))"),
    )


def letter_commitments(think: str, letters: str = DEFAULT_LETTERS) -> list[tuple[int, str]]:
    """(position, letter) of every option letter the reasoning commits to, sorted by position (the
    letter's own index, so "the answer is B" sits where "B" is)."""
    found = {
        m.start(1): m.group(1) for pattern in _commitment_patterns(letters) for m in pattern.finditer(think)
    }
    return sorted(found.items())


def option_mentions(think: str, options: dict[str, str]) -> list[tuple[int, str]]:
    """(position, letter) of every option text named in the reasoning (case-insensitive, whole words).
    Texts shorter than 4 characters ("Yes", "No") are skipped: they occur in any sentence. At one
    position the longest text wins ("crack on the rim" over "crack")."""
    lowered = think.lower()
    best: dict[int, tuple[int, str]] = {}
    for letter, text in options.items():
        needle = text.strip().rstrip(".").lower()
        if len(needle) < 4:
            continue
        for m in re.finditer(rf"(?<!\w){re.escape(needle)}(?!\w)", lowered):
            if m.start() not in best or len(needle) > best[m.start()][0]:
                best[m.start()] = (len(needle), letter)
    return sorted((pos, letter) for pos, (_, letter) in best.items())


def conclusion_letter(think: str, options: dict[str, str] | None = None) -> str | None:
    """The reasoning's final conclusion: the last committed letter if it lies in the last third of the
    think text; failing that, the last option text named in the last third; else None."""
    letters = "".join(sorted(options)) if options else DEFAULT_LETTERS
    start = CONCLUSION_FRACTION * len(think)
    committed = [letter for pos, letter in letter_commitments(think, letters) if pos >= start]
    if committed:
        return committed[-1]
    named = [letter for pos, letter in option_mentions(think, options) if pos >= start] if options else []
    return named[-1] if named else None


def early_commitment(think: str, options: dict[str, str] | None = None) -> bool:
    """True when an option letter is committed to in the first half of the reasoning: the model
    should weigh the evidence before it picks. Option texts may be discussed freely."""
    letters = "".join(sorted(options)) if options else DEFAULT_LETTERS
    return any(pos < EARLY_FRACTION * len(think) for pos, _ in letter_commitments(think, letters))


def structure_score(parsed: ParsedResponse, truth: str, options: dict[str, str] | None = None) -> float:
    """The structure reward of one parsed completion; see `structure_reward`."""
    if parsed.think is None or not parsed.think_closed or not parsed.think.strip():
        return 0.0
    think = parsed.think.strip()
    final = tagged_answer(parsed)
    agree = final is not None and conclusion_letter(think, options) == final
    score = (STRUCTURE_AGREE if agree else 0.0) + (STRUCTURE_CORRECT if agree and final == truth else 0.0)
    if early_commitment(think, options):
        score += STRUCTURE_EARLY
    return max(STRUCTURE_EARLY, min(STRUCTURE_AGREE + STRUCTURE_CORRECT, score))


def structure_reward(
    completions: Sequence[Any],
    answer: Sequence[str] | None = None,
    options: Sequence[Any] | None = None,
    **kwargs: Any,
) -> list[float]:
    """Reasoning structure: r = 0.5*agree + 0.5*(agree and correct) - 0.5*early, in [-0.5, 1].

    - agree: the reasoning's final conclusion (`conclusion_letter`: the last option letter committed to
      in the last third of `<think>`, else the last option text named there, when an `options` column
      is present) is the letter inside `<answer>`;
    - correct: that letter is the true answer;
    - early: an option letter is committed to in the first half of `<think>` ("the answer is B",
      "option B", "(B)", "B." opening a sentence, "so it is B").
    No closed, non-empty `<think>`: 0 (the format reward already punishes that).
    Possible values: 1.0 (conclude, agree, correct), 0.5 (agree, wrong; or all that plus early),
    0.0 (no agreeing conclusion; or agree-wrong plus early), -0.5 (early, no agreeing conclusion).
    """
    truths = [truth_letter(v) for v in _column(answer, "answer", len(completions), "structure_reward")]
    opts = [_options(v) for v in options] if options is not None else [None] * len(completions)
    if len(opts) != len(completions):
        raise RewardInputError(
            f"structure_reward: column 'options' has {len(opts)} values for {len(completions)}"
        )
    return [structure_score(p, t, o) for p, t, o in zip(_parse(completions), truths, opts)]


# --------------------------------------------------------------------------- registry
REWARDS: dict[str, RewardFn] = {
    "domain_reward": domain_reward,
    "seg_reward": seg_reward,
    "choice_reward": choice_reward,
    "format_reward": format_reward,
    "structure_reward": structure_reward,
    "base_format_reward": base_format_reward,
    "base_answer_reward": base_answer_reward,
}
JUDO_REWARDS = ("domain_reward", "seg_reward", "choice_reward", "format_reward", "structure_reward")
BASE_GRPO_REWARDS = ("base_answer_reward", "base_format_reward")


def get_rewards(names: Sequence[str]) -> list[RewardFn]:
    """The reward functions for a recipe's list of names, in order.

    A name is a key of `REWARDS`, or `package.module:function` for a reward of your own (any importable
    TRL-style function), so a new reward needs no edit here. An unknown name, an import that fails or
    something that is not callable is an error that says which and lists the known names.
    """
    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names if n not in REWARDS and ":" not in n]
    if unknown:
        raise KeyError(
            f"unknown reward(s) {', '.join(map(repr, unknown))}; known: {', '.join(REWARDS)} "
            f"(or package.module:function)"
        )
    return [REWARDS[n] if n in REWARDS else _import_reward(n) for n in names]


def _import_reward(spec: str) -> RewardFn:
    import importlib

    module_name, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise KeyError(f"reward {spec!r} cannot be imported: {err}") from err
    if not callable(fn):
        raise KeyError(f"reward {spec!r} is a {type(fn).__name__}, not a function")
    return fn
