"""Reading model output: structure, answers (MMAD's rule), and streaming that agrees with batch parsing."""

from __future__ import annotations

import difflib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judo.grid import format_seg, parse_seg
from judo.response import ParsedResponse, StreamParser, extract_answer, parse_response

OPTIONS = {"A": "Top left.", "B": "Bottom right.", "C": "Center.", "D": "Top right."}
YES_NO = {"A": "Yes.", "B": "No."}

PIN_SEG = "<seg> (3,7)\u2013(3,8), (4,7)\u2013(4,8), (5,8), (6,8) </seg>"
PIN_CELLS = {(3, 7), (3, 8), (4, 7), (4, 8), (5, 8), (6, 8)}
PIN_THINK = (
    "The first image shows a component with a defect where one of the metal pins is bent out of "
    "alignment. This pin is leaning to one side, differing from the other pins, which are straight and "
    "uniformly aligned. In contrast, the second image displays a normal component with all pins straight."
)
FULL = f"{PIN_SEG}\n<think> {PIN_THINK}\n</think>\n<answer>B</answer>"

# Responses as models write them, well-formed or not: used for the streaming equivalence tests.
RESPONSES = [
    FULL,
    "<seg> (11,13), (12,12)\u2013(12,13), (13,10)\u2013(13,12), (14,8)\u2013(14,11) </seg><think> A roll of tape "
    "with an indented line; the template is smooth. So the answer is A. </think><answer>A. Yes.</answer>",
    "<seg> </seg><think>Both images look the same, no defect.</think><answer>(B)</answer>\n",
    "<seg> none </seg> <think> Nothing differs. </think> <answer>Answer: B</answer>",
    "<seg> (1,2) - (1,4),\n(2,3)-(2,3), </seg><think>x</think><answer>B. Bottom right.</answer>",
    "<think>No seg first.</think><seg> (5,5) </seg><answer>C</answer>",  # wrong order
    "<seg> (1,1) </seg><seg> (2,2) </seg><think>t</think><answer>D</answer>",  # repeated seg
    "<seg> (1,1)-(1,3), (2,2)<think> unclosed seg </think><answer>A</answer>",  # unclosed seg
    "<seg> (0,0) </seg><think> the think never closes, answer D is tempting",  # unclosed think
    "<seg> (7,7)-(7,9) </seg><think>t</think><answer>Bottom right.</answer>",  # no letter in answer
    "(1,2)-(1,3) </seg><think>prefilled seg tag</think><answer>C</answer>",  # opening tag was in the prompt
    "The defect is at the bottom right, so B.",  # MMAD-style plain answer
    "B",
    "",
    "<seg> (1,2)-(1,4), (3,",  # cut off mid seg
    "<seg> (20,1), (1,3)-(1,1) </seg><think>bad cells</think><answer>E</answer>",
    "<answer>C</answer><answer>D</answer>",
    "<seg> (2,2)-(2,4) </seg> <think> A B C </think> <answer> </answer>",
]


def test_full_response() -> None:
    r = parse_response(FULL, OPTIONS)
    assert r.text == FULL
    assert r.cells == PIN_CELLS
    assert (r.seg_present, r.seg_closed, r.seg_valid, r.seg_error) == (True, True, True, None)
    assert r.think == PIN_THINK and r.think_closed
    assert (r.answer, r.answer_tagged, r.answer_text, r.answer_closed) == ("B", True, "B", True)
    assert r.format_ok


def test_empty_seg_for_normal_image() -> None:
    r = parse_response("<seg> </seg><think>All pins aligned.</think><answer>B</answer>", YES_NO)
    assert r.cells == set() and r.seg_valid and r.format_ok and r.answer == "B"


@pytest.mark.parametrize(
    ("text", "format_ok"),
    [
        ("<seg></seg><think></think><answer></answer>", True),
        ("  \n<seg> (1,1) </seg>\n\n<think> t </think> <answer>A</answer>\n", True),
        ("<seg> (1,1) </seg>x<think> t </think><answer>A</answer>", False),  # text between parts
        ("Sure! <seg> (1,1) </seg><think> t </think><answer>A</answer>", False),
        ("<seg> (1,1) </seg><think> t </think><answer>A</answer> done", False),
        ("<think> t </think><seg> (1,1) </seg><answer>A</answer>", False),  # wrong order
        ("<seg> (1,1) </seg><answer>A</answer>", False),  # missing think
        ("<seg> (1,1) </seg><think> t </think>", False),  # missing answer
        ("<seg> (1,1) </seg><think> t </think><answer>A</answer><answer>B</answer>", False),  # repeated
        ("<seg> (1,1) </seg><think> t <answer>A</answer>", False),  # think unclosed
        ("<seg> (1,1) <think> t </think><answer>A</answer>", False),  # seg unclosed
    ],
)
def test_format_ok(text: str, format_ok: bool) -> None:
    assert parse_response(text).format_ok is format_ok


def test_format_ok_is_structure_only() -> None:
    """A malformed seg body is the seg reward's business (seg_valid), not the format's."""
    r = parse_response("<seg> (1,5)-(1,2) </seg><think>t</think><answer>A</answer>")
    assert r.format_ok and not r.seg_valid and "reversed" in r.seg_error
    assert r.cells == {(1, 2), (1, 3), (1, 4), (1, 5)}  # lenient reading still shows them


def test_missing_and_malformed_parts() -> None:
    r = parse_response("<think>only thinking, the answer is C</think>", OPTIONS)
    assert not r.seg_present and r.cells == set() and r.seg_error == "missing <seg> ... </seg> tags"
    assert r.think == "only thinking, the answer is C" and r.answer == "C" and not r.answer_tagged

    r = parse_response("<seg> (1,1) </seg><seg> (2,2) </seg><think>t</think><answer>D</answer>")
    assert r.cells == {(1, 1)} and not r.seg_valid and "duplicate" in r.seg_error

    r = parse_response("<seg> (1,1)-(1,3), (2,2)<think> t </think><answer>A</answer>")
    assert r.seg_present and not r.seg_closed and r.cells == {(1, 1), (1, 2), (1, 3), (2, 2)}
    assert not r.seg_valid and "unclosed" in r.seg_error

    r = parse_response("(1,2)-(1,3) </seg><think>p</think><answer>C</answer>")
    assert r.seg_present and r.seg_closed and r.cells == {(1, 2), (1, 3)} and not r.seg_valid

    r = parse_response("<seg> (0,0) </seg><think> never closes, D is tempting")
    assert r.think == "never closes, D is tempting" and not r.think_closed and r.answer == "D"


def test_cells_agree_with_grid() -> None:
    for text in RESPONSES:
        r = parse_response(text)
        if r.seg_present:
            assert r.cells == parse_seg(text), text


# ------------------------------------------------------------------------------------------ answers


@pytest.mark.parametrize(
    ("content", "letter"),
    [
        ("B", "B"),
        ("B.", "B"),
        ("(B)", "B"),
        ("B. Bottom right.", "B"),
        ("Answer: B", "B"),
        ("answer is B", "B"),
        ("The answer is C.", "C"),
        (" **D** ", "D"),
        ("[A]", "A"),
        ("B) Bottom right", "B"),
    ],
)
def test_answer_tag_forms(content: str, letter: str) -> None:
    r = parse_response(
        f"<seg> </seg><think>A think with letters A and E.</think><answer>{content}</answer>", OPTIONS
    )
    assert (r.answer, r.answer_tagged) == (letter, True)


def test_answer_prefers_tag_over_last_letter() -> None:
    assert extract_answer("<think>... so C?</think><answer>A</answer> hmm D", OPTIONS) == "A"


def test_mmad_last_match_rule() -> None:
    assert extract_answer("A seems wrong; the answer is B", None) == "B"
    assert extract_answer("Option B. Actually, C.", OPTIONS) == "C"
    # Only letters of the given options count: E is not an option here.
    assert extract_answer("B is it, not E", OPTIONS) == "B"
    # No option letter at all: MMAD falls back to the closest option text, never to E.
    best = difflib.get_close_matches("It is E.", list(OPTIONS.values()), n=1, cutoff=0.0)[0]
    assert extract_answer("It is E.", OPTIONS) == next(k for k, v in OPTIONS.items() if v == best)
    assert extract_answer("It is E.", None) == "E"
    # \b: letters inside words never count.
    assert extract_answer("Bottom", None) is None
    assert extract_answer("CAB, ABC", None) is None


def test_difflib_fallback() -> None:
    assert extract_answer("bottom right", OPTIONS) == "B"
    assert extract_answer("the center", OPTIONS) == "C"
    assert extract_answer("no", YES_NO) == "B"
    r = parse_response("<seg> </seg><think>t</think><answer>Bottom right.</answer>", OPTIONS)
    assert (r.answer, r.answer_tagged) == ("B", True)
    assert extract_answer("no", None) is None  # nothing to compare with
    assert extract_answer("   ", OPTIONS) is None  # a blank response is no answer
    assert extract_answer("", None) is None


def test_options_as_list_and_bad_options() -> None:
    assert extract_answer("center", ["Top left.", "Bottom right.", "Center."]) == "C"
    with pytest.raises(TypeError, match="options must be"):
        parse_response("B", options=3)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/segthinkanswr ABCDE(),-\u20130123456789\n.")), max_size=150))
def test_never_raises_on_tag_soup(text: str) -> None:
    for options in (None, OPTIONS):
        r = parse_response(text, options)
        assert r.answer is None or r.answer in "ABCDE"
        assert r.format_ok is False or r.seg_closed
        assert parse_response(text, options, final=False).cells <= r.cells


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_never_raises_on_any_text(text: str) -> None:
    assert isinstance(parse_response(text, OPTIONS), ParsedResponse)


def test_non_string_input() -> None:
    assert parse_response(None).text == ""  # type: ignore[arg-type]
    assert parse_response(b"<answer>B</answer>").answer == "B"  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ streaming


def test_cells_arrive_before_seg_closes() -> None:
    parser = StreamParser(OPTIONS)
    seen = []
    for ch in FULL:
        view = parser.feed(ch)
        if not view.seg_closed:
            seen.append(frozenset(view.cells))
    assert seen[-1] == PIN_CELLS  # every run was available before </seg>
    assert frozenset({(3, 7), (3, 8)}) in seen
    assert parser.feed("") is parser.current
    assert parser.finish() == parse_response(FULL, OPTIONS)


def test_streaming_holds_back_what_may_change() -> None:
    parser = StreamParser()
    assert parser.feed("<seg> (1,2)").cells == set()  # may become a run
    assert parser.feed("-(1,").cells == set()
    assert parser.feed("4)").cells == {(1, 2), (1, 3), (1, 4)}
    parser.feed(" </seg><think>The defect looks like A")
    assert parser.current.answer == "A"
    assert parser.feed("n").answer is None  # "A" became "An"
    view = parser.feed(" odd dent </thi")
    assert view.think == "The defect looks like An odd dent" and not view.think_closed  # partial tag hidden
    assert parser.feed("nk>").think_closed


def test_finish_reads_a_cut_off_seg() -> None:
    parser = StreamParser()
    parser.feed("<seg> (1,2)-(1,4), (3,5)")
    assert parser.current.cells == {(1, 2), (1, 3), (1, 4)}
    assert parser.finish().cells == {(1, 2), (1, 3), (1, 4), (3, 5)}
    assert parser.finish() == parse_response(parser.text)


def _chunkings(text: str, rng: random.Random, n: int) -> list[list[str]]:
    out = [[text], list(text)]
    for _ in range(n):
        cuts = (
            sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, rng.randint(1, 40))))
            if len(text) > 1
            else []
        )
        bounds = [0, *cuts, len(text)]
        out.append([text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)])
    return out


@pytest.mark.parametrize("index", range(len(RESPONSES)))
def test_stream_equals_batch_at_every_step(index: int) -> None:
    """Whatever the chunking, each streamed view equals a fresh parse of the text so far, and the end
    equals parse_response(full_text)."""
    text, rng = RESPONSES[index], random.Random(index)
    for options in (None, OPTIONS):
        final = parse_response(text, options)
        for chunks in _chunkings(text, rng, 25):
            parser, so_far = StreamParser(options), ""
            for chunk in chunks:
                so_far += chunk
                assert parser.feed(chunk) == parse_response(so_far, options, final=False), (chunks, so_far)
            assert parser.text == text
            assert parser.finish() == final
            if final.seg_closed or not final.seg_present:
                # Nothing was held back: the last streamed view is already the final one, except for the
                # closest-option guess that only a finished response gets.
                assert parser.current.cells == final.cells


@settings(max_examples=60, deadline=None)
@given(
    st.sets(st.tuples(st.integers(0, 15), st.integers(0, 15)), max_size=40),
    st.sampled_from(["-", " - ", "\u2013", "\u2014"]),
    st.sampled_from(["A", "B", "(C)", "D. Top right.", "Answer: B", ""]),
    st.lists(st.integers(1, 12), min_size=1, max_size=60),
)
def test_stream_equals_batch_generated(cells: set, dash: str, answer: str, steps: list[int]) -> None:
    text = (
        format_seg(cells).replace(")-(", ")" + dash + "(")
        + f"\n<think> Compared with the template, A region differs. </think>\n<answer>{answer}</answer>"
    )
    parser, end = StreamParser(OPTIONS), 0
    while end < len(text):
        step = steps[end % len(steps)]
        parser.feed(text[end : end + step])
        end += step
        assert parser.current == parse_response(text[:end], OPTIONS, final=False)
    final = parser.finish()
    assert final == parse_response(text, OPTIONS)
    assert final.cells == cells and final.format_ok and final.seg_valid


SOUP = st.lists(
    st.sampled_from(
        [
            "<seg>",
            "</seg>",
            "<think>",
            "</think>",
            "<answer>",
            "</answer>",
            "<",
            "</",
            "<se",
            "(1,2)",
            "(3,4)",
            "-",
            "\u2013",
            "(1,",
            "5)",
            ", ",
            " ",
            "\n",
            "A",
            "B",
            "E",
            "An",
            "x",
            "none",
            "Bottom right.",
            "(20,1)",
        ]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(SOUP, st.lists(st.integers(1, 9), min_size=1, max_size=30), st.sampled_from([None, OPTIONS]))
def test_stream_equals_batch_on_tag_soup(text: str, steps: list[int], options) -> None:
    """Fuzz the streaming view against the batch view."""
    parser, end, i = StreamParser(options), 0, 0
    while end < len(text):
        step = steps[i % len(steps)]
        parser.feed(text[end : end + step])
        end, i = end + step, i + 1
        assert parser.current == parse_response(text[:end], options, final=False)
    assert parser.finish() == parse_response(text, options)
