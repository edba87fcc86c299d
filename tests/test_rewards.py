"""The GRPO rewards: exact values on hand-made completions, both TRL completion shapes, bad truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judo import rewards
from judo.rewards import (
    BASE_GRPO_REWARDS,
    JUDO_REWARDS,
    REWARDS,
    RewardInputError,
    base_answer_reward,
    base_format_reward,
    choice_reward,
    conclusion_letter,
    domain_reward,
    early_commitment,
    format_reward,
    get_rewards,
    letter_commitments,
    make_domain_reward,
    seg_reward,
    structure_reward,
    truth_cells,
)

SEG = "<seg> (3,4)-(3,6), (4,5) </seg>"
CELLS = [[3, 4], [3, 5], [3, 6], [4, 5]]
FILLER = "The query is compared with the template region by region, and the surfaces look alike. " * 3


def full(think: str, answer: str = "B", seg: str = SEG) -> str:
    return f"{seg}<think>{think}</think><answer>{answer}</answer>"


def chat(text: str) -> list[dict]:
    """TRL's conversational completion shape."""
    return [{"role": "assistant", "content": text}]


# ----------------------------------------------------------------------------------------- seg
@pytest.mark.parametrize(
    ("completion", "truth", "expected"),
    [
        (full("x"), CELLS, 1.0),  # exact
        (full("x", seg="<seg> </seg>"), [], 1.0),  # normal image left blank
        (full("x", seg="<seg>\n</seg>"), [], 1.0),
        (full("x", seg="<seg> (3,4)-(3,5) </seg>"), CELLS, 0.2 + 0.8 * (2 * 2 / (2 + 4))),  # partial
        (full("x", seg="<seg> (3,4)-(3,7), (9,9) </seg>"), CELLS, 0.2 + 0.8 * (2 * 3 / (5 + 4))),
        (full("x", seg="<seg> (10,10) </seg>"), CELLS, 0.2),  # both non-empty, disjoint: the floor
        (full("x", seg="<seg> </seg>"), CELLS, 0.0),  # missed defect
        (full("x"), [], 0.0),  # false alarm
        (full("x", seg="<seg> (3,4) – (3,6), (4,5) </seg>"), CELLS, 1.0),  # the paper's en dash
    ],
)
def test_seg_reward_values(completion: str, truth, expected: float):
    assert seg_reward([completion], seg=[truth]) == [pytest.approx(expected)]
    assert seg_reward([chat(completion)], seg=[truth]) == [pytest.approx(expected)]


@pytest.mark.parametrize(
    "completion",
    [
        "<think>no seg at all</think><answer>A</answer>",
        "<seg> (3,4)-(3,6) <think>unclosed seg</think><answer>A</answer>",
        full("x", seg="<seg> (16,2) </seg>"),  # out of range
        full("x", seg="<seg> (3,6)-(3,4) </seg>"),  # reversed run
        full("x", seg="<seg> (3,4)-(4,6) </seg>"),  # run across rows
        full("x", seg="<seg> (1,2) (3,4) </seg>"),  # missing comma
        full("x", seg="<seg> (1,2) </seg><seg> (1,2) </seg>"),  # duplicate block
        full("x", seg="<seg> somewhere top left </seg>"),
        "",
    ],
    ids=[
        "missing",
        "unclosed",
        "out-of-range",
        "reversed",
        "cross-row",
        "no-comma",
        "duplicate",
        "prose",
        "empty",
    ],
)
def test_malformed_seg_scores_zero_even_for_a_normal_image(completion: str):
    assert seg_reward([completion, completion], seg=[[], CELLS]) == [0.0, 0.0]


@pytest.mark.parametrize(
    "truth",
    [
        CELLS,
        [tuple(c) for c in CELLS],
        json.dumps(CELLS),
        SEG,
        np.array(CELLS),
        [[np.int64(3), 4], [3, 5], [3, 6], [4, 5]],
    ],
    ids=["lists", "tuples", "json", "seg-text", "ndarray", "numpy-ints"],
)
def test_seg_truth_shapes(truth):
    assert truth_cells(truth) == {(3, 4), (3, 5), (3, 6), (4, 5)}
    assert seg_reward([full("x")], seg=[truth]) == [1.0]


@pytest.mark.parametrize("empty", [None, [], "", "[]", "<seg> </seg>"])
def test_empty_seg_truth_shapes(empty):
    assert truth_cells(empty) == set()


@pytest.mark.parametrize(
    ("truth", "match"),
    [
        ([[1]], "not \\[row, col\\]"),
        ([[16, 0]], "0..15"),
        ([["a", "b"]], "not \\[row, col\\]"),
        ([[True, 1]], "not \\[row, col\\]"),
        ([[1.5, 2]], "not \\[row, col\\]"),
        ("[[1, 2]", "invalid JSON"),
        ("(1,2) (3,4)", "invalid seg text"),
        (42, "list of \\[row, col\\]"),
    ],
)
def test_bad_seg_truth_is_a_clear_error(truth, match: str):
    with pytest.raises(RewardInputError, match=match):
        seg_reward([full("x")], seg=[truth])


# ----------------------------------------------------------------------------------------- choice
@pytest.mark.parametrize(
    ("completion", "truth", "expected"),
    [
        (full("x", answer="B"), "B", 1.0),
        (full("x", answer="B"), " b ", 1.0),
        (full("x", answer="B"), "(B)", 1.0),
        (full("x", answer="B. Scratch"), "B", 1.0),
        (full("x", answer="(B)"), "B", 1.0),
        (full("x", answer="Answer: B"), "B", 1.0),
        (full("x", answer="C"), "B", 0.0),
        (full("x", answer=""), "B", 0.0),
        (SEG + "<think>so the answer is B</think>", "B", 0.0),  # letter only in the reasoning
        (SEG + "<think>x</think><answer>B", "B", 0.0),  # cut off before </answer>
        ("<answer>B</answer>", "B", 1.0),  # format is not choice's business
    ],
)
def test_choice_reward_values(completion: str, truth: str, expected: float):
    assert choice_reward([completion], answer=[truth]) == [expected]
    assert base_answer_reward([chat(completion)], answer=[truth]) == [expected]


@pytest.mark.parametrize("truth", ["", "BC", "2", None, "answer B"])
def test_bad_answer_truth_is_a_clear_error(truth):
    with pytest.raises(RewardInputError, match="option letter"):
        choice_reward([full("x")], answer=[truth])


# ----------------------------------------------------------------------------------------- format
@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        (full("reasoning"), 1.0),
        (f"  {SEG}\n<think>\nreasoning\n</think>\n<answer>B</answer>\n", 1.0),
        ("<think>reasoning</think><answer>B</answer>", 0.0),  # no seg
        (f"<think>reasoning</think>{SEG}<answer>B</answer>", 0.0),  # wrong order
        (full("reasoning") + " extra words", 0.0),
        ("preamble " + full("reasoning"), 0.0),
        (f"{SEG}<think>a</think><think>b</think><answer>B</answer>", 0.0),
        (f"{SEG}<think>reasoning</think><answer>B", 0.0),
        ("", 0.0),
    ],
)
def test_format_reward_values(completion: str, expected: float):
    assert format_reward([completion]) == [expected]
    assert format_reward([chat(completion)]) == [expected]


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<think>reasoning</think><answer>B</answer>", 1.0),
        ("\n<think>\nreasoning\n</think>\n\n<answer> B </answer>\n", 1.0),
        (full("reasoning"), 0.0),  # JUDO's format is not the base format
        ("<think></think><answer>B</answer>", 0.0),
        ("<think>reasoning</think><answer></answer>", 0.0),
        ("<think>reasoning</think><answer>B</answer> and more", 0.0),
        ("<answer>B</answer><think>reasoning</think>", 0.0),
        ("<think>a <answer>A</answer></think><answer>B</answer>", 0.0),
    ],
)
def test_base_format_reward_values(completion: str, expected: float):
    assert base_format_reward([completion]) == [expected]
    assert base_format_reward([chat(completion)]) == [expected]


# ----------------------------------------------------------------------------------------- structure
CONCLUDE_B = FILLER + "The thin dark line matches a scratch, so the answer is B."
EARLY_B = "The answer is B. " + FILLER + "A thin dark line is visible."
EARLY_B_CONCLUDE_B = "Option B fits. " + FILLER + "Therefore the answer is B."
NO_LETTER = FILLER + "A thin dark line is visible on the cap."  # capital "A" as an article is no letter
MIDDLE_B = (
    "x" * 100 + " the answer is B " + "y" * 60
)  # letter at 0.61 of the text: neither half nor last third


@pytest.mark.parametrize(
    ("think", "answer", "truth", "expected"),
    [
        (CONCLUDE_B, "B", "B", 1.0),  # concludes, agrees, correct
        (CONCLUDE_B, "B", "C", 0.5),  # concludes, agrees, wrong
        (CONCLUDE_B, "C", "C", 0.0),  # reasoning says B, answer says C
        (NO_LETTER, "B", "B", 0.0),  # no stated conclusion
        (EARLY_B, "B", "B", -0.5),  # commits first, never concludes
        (EARLY_B_CONCLUDE_B, "B", "B", 0.5),  # 1.0 - 0.5
        (EARLY_B_CONCLUDE_B, "B", "A", 0.0),  # 0.5 - 0.5
        (MIDDLE_B, "B", "B", 0.0),
        (FILLER + "Both (A) and (B) were considered; the evidence points to (C).", "C", "C", 1.0),
        (FILLER + "Weighing the options.\nB. Scratch: it fits the thin line.", "B", "B", 1.0),
        (FILLER + "The defect is thin and long, so it is D.", "D", "D", 1.0),
    ],
)
def test_structure_reward_values(think: str, answer: str, truth: str, expected: float):
    completion = full(think, answer=answer)
    assert structure_reward([completion], answer=[truth]) == [expected]
    assert structure_reward([chat(completion)], answer=[truth]) == [expected]


def test_structure_reward_without_closed_think_or_answer():
    assert structure_reward([SEG + "<answer>B</answer>"], answer=["B"]) == [0.0]
    assert structure_reward([SEG + "<think>The answer is B. " + FILLER], answer=["B"]) == [0.0]  # unclosed
    # no <answer>: nothing can agree, an early commitment is still penalised
    assert structure_reward([SEG + f"<think>{EARLY_B}</think>"], answer=["B"]) == [-0.5]


def test_structure_reward_reads_option_texts_from_the_options_column():
    options = {"A": "Scratch", "B": "Crack on the rim", "C": "No defect"}
    think = FILLER + "The jagged line running along the edge is a crack on the rim."
    completion = full(think, answer="B")
    assert structure_reward([completion], answer=["B"]) == [0.0]  # no letter, no options: no conclusion
    assert structure_reward([completion], answer=["B"], options=[options]) == [1.0]
    assert structure_reward([completion], answer=["B"], options=[json.dumps(options)]) == [1.0]
    # Arrow-style struct with a letter this row lacks
    assert structure_reward([completion], answer=["B"], options=[{**options, "D": None}]) == [1.0]
    # a stated letter wins over a named option text
    lettered = full(FILLER + "It looks like a crack on the rim, yet the answer is C.", answer="C")
    assert (
        conclusion_letter(FILLER + "It looks like a crack on the rim, yet the answer is C.", options) == "C"
    )
    assert structure_reward([lettered], answer=["C"], options=[options]) == [1.0]


@pytest.mark.parametrize(
    ("text", "letters"),
    [
        ("The answer is B.", ["B"]),
        ("answer: (C)", ["C"]),
        ("Option A describes a hole, options C and D do not apply.", ["A", "C"]),
        ("I choose D", ["D"]),
        ("We go with option E.", ["E"]),
        ("Looking at it. B. Scratch is right.", ["B"]),
        ("B) crack", ["B"]),
        ("Therefore, C.", ["C"]),
        ("A scratch. A crack. An Apple. Grade B steel", []),
        ("the answer is b", []),  # lower case letters are words, not options
        ("answer is F", []),  # not an option letter
    ],
)
def test_letter_commitments(text: str, letters: list[str]):
    assert [letter for _, letter in letter_commitments(text)] == letters


def test_early_commitment_uses_the_first_half():
    assert early_commitment("Option B. " + "x" * 100)
    assert not early_commitment("x" * 100 + " Option B.")


# ----------------------------------------------------------------------------------------- domain
class TableEmbedder:
    """A deterministic embedder for exact values: each text maps to a fixed 2-d unit vector."""

    def __init__(self, table: dict[str, list[float]]):
        self.table = table
        self.calls: list[list[str]] = []

    def encode(self, sentences, **kwargs):
        self.calls.append(list(sentences))
        return np.array([self.table[s] for s in sentences], dtype=np.float32)


TABLE = {
    "rationale": [1.0, 0.0],
    "close": [0.6, 0.8],  # cos 0.6
    "edge": [0.5, np.sqrt(0.75)],  # cos 0.5: kept
    "far": [0.4, np.sqrt(0.84)],  # cos 0.4: dropped
}


def test_domain_reward_exact_values_and_one_encode_call():
    embedder = TableEmbedder(TABLE)
    reward = make_domain_reward(embedder)
    completions = [
        full("close"),
        chat(full("edge")),
        full("far"),
        full("close"),
        SEG + "<think>close",
        SEG + "<answer>B</answer>",
        full("close"),
    ]
    rationales = ["rationale"] * 6 + [""]
    assert reward(completions, rationale=rationales) == pytest.approx([0.6, 0.5, 0.0, 0.6, 0.0, 0.0, 0.0])
    assert len(embedder.calls) == 1  # the whole batch in one encode, duplicates once
    assert sorted(embedder.calls[0]) == ["close", "edge", "far", "rationale"]
    assert reward.__name__ == "domain_reward"


def test_set_embedder_redirects_the_registered_reward():
    embedder = TableEmbedder(TABLE)
    rewards.set_embedder(embedder)
    try:
        assert REWARDS["domain_reward"]([full("close")], rationale=["rationale"]) == [pytest.approx(0.6)]
    finally:
        rewards.set_embedder(None)
    assert embedder.calls


def test_domain_reward_with_the_real_minilm():
    rationale = (
        "The query shows a thin scratch across the cap that the template does not have; scratches on "
        "the cap are cosmetic surface defects."
    )
    paraphrase = (
        "Compared with the template, the cap in the query carries a thin scratch, a cosmetic defect of "
        "the surface."
    )
    unrelated = "The weather was sunny and the train left the station on time."
    scores = domain_reward([full(paraphrase), full(unrelated)], rationale=[rationale, rationale])
    from judo.embedding import cosine

    assert scores[0] == pytest.approx(float(cosine([paraphrase], [rationale])[0]), abs=1e-5)
    assert scores[0] > 0.5 and scores[1] == 0.0


# ----------------------------------------------------------------------------------------- TRL calling convention
def test_rewards_accept_trl_keyword_call_with_extra_columns():
    embedder = TableEmbedder(TABLE)
    rewards.set_embedder(embedder)
    completion = full(FILLER + " so the answer is B.")
    logged: list = []
    embedder.table[completion.split("<think>")[1].split("</think>")[0].strip()] = [0.6, 0.8]
    kwargs = {
        "prompts": [[{"role": "user", "content": "q"}]] * 2,
        "completions": [chat(completion), chat("garbage")],
        "completion_ids": [[1, 2, 3], [4]],
        "answer": ["B", "B"],
        "seg": [CELLS, CELLS],
        "rationale": ["rationale", "rationale"],
        "options": [json.dumps({"A": "x", "B": "y"})] * 2,
        "images": [["q.png", "t.png"]] * 2,
        "question_key": ["k#0", "k#0"],
        "trainer_state": None,
        "log_metric": lambda *a: logged.append(a),
        "log_extra": lambda *a: None,
    }
    try:
        out = {name: fn(**kwargs) for name, fn in REWARDS.items()}
    finally:
        rewards.set_embedder(None)
    assert out == {
        "domain_reward": [pytest.approx(0.6), 0.0],
        "seg_reward": [1.0, 0.0],
        "choice_reward": [1.0, 0.0],
        "format_reward": [1.0, 0.0],
        "structure_reward": [1.0, 0.0],
        "base_format_reward": [0.0, 0.0],
        "base_answer_reward": [1.0, 0.0],
    }
    assert logged == [
        ("domain_reward/raw_cosine", pytest.approx(0.6)),
        ("domain_reward/below_threshold", 0.0),
    ]


@pytest.mark.parametrize(
    ("name", "column"),
    [
        ("seg_reward", "seg"),
        ("choice_reward", "answer"),
        ("structure_reward", "answer"),
        ("domain_reward", "rationale"),
    ],
)
def test_missing_or_misaligned_truth_column_names_it(name: str, column: str):
    fn = REWARDS[name]
    with pytest.raises(RewardInputError, match=f"{name} needs the dataset column '{column}'"):
        fn(completions=[full("x")])
    with pytest.raises(RewardInputError, match=f"column '{column}' has 2 values for 1 completions"):
        fn(completions=[full("x")], **{column: [CELLS if column == "seg" else "B"] * 2})


def test_odd_completion_objects_score_zero():
    odd = [None, 42, {"content": None}, [{"role": "user", "content": full("x")}], [{"role": "assistant"}]]
    assert seg_reward(odd, seg=[[]] * 5) == [0.0] * 5
    assert choice_reward(odd, answer=["B"] * 5) == [0.0] * 5
    assert format_reward(odd) == [0.0] * 5
    assert structure_reward(odd, answer=["B"] * 5) == [0.0] * 5
    # multimodal content parts are read
    parts = [{"role": "assistant", "content": [{"type": "text", "text": full("x")}]}]
    assert format_reward([parts]) == [1.0]


PIECES = st.sampled_from(
    [
        "<seg>",
        "</seg>",
        "<think>",
        "</think>",
        "<answer>",
        "</answer>",
        "(3,4)",
        "-",
        ",",
        "(15,15)",
        "(16,1)",
        " ",
        "A",
        "B",
        "the answer is C",
        "option D",
        "(E)",
        ".",
        "\n",
        "–",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(PIECES, max_size=30).map("".join))
def test_rewards_never_raise_on_arbitrary_completions(text: str):
    reward = make_domain_reward(TableEmbedder({}))  # no closed think with known text: never encodes
    bounds = {
        "seg_reward": (0, 1),
        "choice_reward": (0, 1),
        "format_reward": (0, 1),
        "structure_reward": (-0.5, 1),
        "base_format_reward": (0, 1),
        "base_answer_reward": (0, 1),
    }
    for name, (lo, hi) in bounds.items():
        (value,) = REWARDS[name]([text], answer=["B"], seg=[CELLS], rationale=[""])
        assert lo <= value <= hi, name
    assert reward([text], rationale=[""]) == [0.0]


# ----------------------------------------------------------------------------------------- registry
def test_registry_names_match_function_names_for_trl_logs():
    assert set(JUDO_REWARDS) | set(BASE_GRPO_REWARDS) == set(REWARDS)
    for name, fn in REWARDS.items():
        assert fn.__name__ == name
        assert fn.__doc__ and "r =" in fn.__doc__  # every reward documents its formula


def test_get_rewards_keeps_order_and_rejects_unknown_names():
    assert get_rewards(["seg_reward", "domain_reward"]) == [seg_reward, domain_reward]
    assert get_rewards("format_reward") == [format_reward]
    with pytest.raises(KeyError, match="unknown reward\\(s\\) 'accuracy'.*known: domain_reward"):
        get_rewards(["seg_reward", "accuracy"])


def test_get_rewards_imports_own_rewards_by_module_path():
    from tests.letter_rewards import letter_share_reward

    assert get_rewards(["seg_reward", "tests.letter_rewards:letter_share_reward"]) == [
        seg_reward,
        letter_share_reward,
    ]
    with pytest.raises(KeyError, match="cannot be imported.*no_such_module"):
        get_rewards(["tests.no_such_module:reward"])
    with pytest.raises(KeyError, match="cannot be imported.*missing"):
        get_rewards(["tests.letter_rewards:missing"])
    with pytest.raises(KeyError, match="not a function"):
        get_rewards(["tests.letter_rewards:LETTERS"])
