"""Prompts: MMAD's 1-shot order, the JUDO output instruction, stage 1/2 prompts, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from judo.grid import parse_seg
from judo.prompts import (
    IMAGE_SIZE,
    INSPECTOR_INSTRUCTION,
    KNOWLEDGE_PREFIX,
    LETTER_INSTRUCTION_DIRECT,
    QUERY_INTRO,
    STYLES,
    Prompt,
    PromptError,
    format_options,
    inspection_prompt,
    stage1_prompt,
    stage2_prompt,
)

RED, BLUE, GREEN = (200, 0, 0), (0, 0, 200), (0, 160, 0)
OPTIONS = {"A": "Yes.", "B": "No."}


def solid(color, size=(640, 480)) -> Image.Image:
    return Image.new("RGB", size, color)


def positions(text: str, *needles: str) -> list[int]:
    """Index of each needle, searched left to right after the previous one (missing -> -1)."""
    out, start = [], 0
    for needle in needles:
        at = text.find(needle, start)
        out.append(at)
        start = max(at, 0) + len(needle)
    return out


def test_mmad_style_follows_the_official_order():
    prompt = inspection_prompt(
        solid(RED), solid(BLUE), "Is there any defect in the object?", OPTIONS, style="mmad"
    )
    at = positions(
        prompt.text,
        INSPECTOR_INSTRUCTION,
        LETTER_INSTRUCTION_DIRECT,
        "Following is 1 image of normal sample",
        "<image>",
        QUERY_INTRO,
        "<image>",
        "Question: Is there any defect in the object?",
        "A. Yes.",
        "B. No.",
    )
    assert -1 not in at and at == sorted(at), prompt.text
    assert prompt.text.endswith("Question: Is there any defect in the object?\nA. Yes.\nB. No.")
    for tag in ("<seg>", "<think>", "<answer>"):
        assert tag not in prompt.text


def test_template_first_query_last_resized():
    prompt = inspection_prompt(solid(RED), solid(BLUE, (300, 200)), "Defect?", OPTIONS)
    assert len(prompt.images) == 2
    assert [im.size for im in prompt.images] == [(IMAGE_SIZE, IMAGE_SIZE)] * 2
    assert all(im.mode == "RGB" for im in prompt.images)
    assert prompt.images[0].getpixel((10, 10)) == BLUE  # the template
    assert prompt.images[1].getpixel((10, 10)) == RED  # the query
    (message,) = prompt.messages
    assert message["role"] == "user"
    assert [p["type"] for p in message["content"]] == ["text", "image", "text", "image", "text"]


def test_messages_are_json_serialisable_for_datasets():
    prompt = inspection_prompt(solid(RED), solid(BLUE), "Defect?", OPTIONS, knowledge="Scratch: a line.")
    assert json.loads(json.dumps(prompt.messages)) == prompt.messages


def test_judo_style_adds_the_output_instruction_with_a_valid_seg_example():
    prompt = inspection_prompt(
        solid(RED), solid(BLUE), "Where is the defect?", {"A": "Top left.", "B": "Center."}
    )
    text = prompt.text
    at = positions(text, "Question: Where is the defect?", "B. Center.", "<seg>", "<think>", "<answer>")
    assert -1 not in at and at == sorted(at)
    assert "16x16 grid" in text and "(row,col)" in text
    assert LETTER_INSTRUCTION_DIRECT not in text  # "directly" contradicts thinking first
    example = text[text.index("e.g. ") + 5 :]
    assert parse_seg(example, strict=False) == {(11, 12), (11, 13), (11, 14), (12, 11)}


def test_think_style_has_no_seg():
    text = inspection_prompt(solid(RED), solid(BLUE), "Defect?", OPTIONS, style="think").text
    assert "<think>" in text and "<answer>" in text and "<seg>" not in text


def test_knowledge_block_comes_before_the_template():
    knowledge = " Scratch\n Description: a thin bright line.\n Good\n Description: uniform. "
    prompt = inspection_prompt(solid(RED), solid(BLUE), "Defect?", OPTIONS, knowledge=knowledge, style="mmad")
    at = positions(
        prompt.text,
        LETTER_INSTRUCTION_DIRECT,
        KNOWLEDGE_PREFIX,
        "Scratch\n Description",
        "Following is 1 image of normal sample",
        "<image>",
    )
    assert -1 not in at and at == sorted(at)
    for empty in (None, "", "  \n"):
        text = inspection_prompt(solid(RED), solid(BLUE), "Defect?", OPTIONS, knowledge=empty).text
        assert KNOWLEDGE_PREFIX not in text


def test_several_templates_all_come_first():
    prompt = inspection_prompt(solid(RED), [solid(BLUE), solid(GREEN)], "Defect?", OPTIONS)
    assert [im.getpixel((0, 0)) for im in prompt.images] == [BLUE, GREEN, RED]
    assert "Following is 2 images of normal sample" in prompt.text


def test_free_form_question_without_options():
    prompt = inspection_prompt(solid(RED), solid(BLUE), "What is wrong with it?", None)
    assert "A. " not in prompt.text and "short answer" in prompt.text


def test_accepts_arrays_and_paths(tmp_path):
    path = tmp_path / "q.png"
    solid(RED).save(path)
    array = np.zeros((64, 64, 3), dtype=np.uint8)
    prompt = inspection_prompt(path, array, "Defect?", OPTIONS)
    assert prompt.images[1].getpixel((0, 0)) == RED and prompt.images[0].getpixel((0, 0)) == (0, 0, 0)


def test_format_options_keeps_order_and_tidies_text():
    assert format_options({"B": "No.", "A": "  Yes,\n a crack. "}) == "B. No.\nA. Yes, a crack."


@pytest.mark.parametrize("bad", [{}, None, ["A", "B"], {"a": "x"}, {"AB": "x"}, {"A": "  "}, {"A": 3}])
def test_format_options_rejects_malformed(bad):
    with pytest.raises(PromptError):
        format_options(bad)


@pytest.mark.parametrize("question", ["", "   ", None, "x" * 5000])
def test_bad_question(question):
    with pytest.raises(PromptError):
        inspection_prompt(solid(RED), solid(BLUE), question, OPTIONS)


def test_unknown_style():
    with pytest.raises(PromptError, match="unknown prompt style 'r1'"):
        inspection_prompt(solid(RED), solid(BLUE), "Defect?", OPTIONS, style="r1")
    assert set(STYLES) >= {"judo", "mmad"}


@pytest.mark.parametrize("template", [None, []])
def test_missing_template(template):
    with pytest.raises(PromptError, match="no template image"):
        inspection_prompt(solid(RED), template, "Defect?", OPTIONS)


def test_bad_image_gets_the_image_error():
    from judo.images import ImageInputError

    with pytest.raises(ImageInputError):
        inspection_prompt(b"not an image", solid(BLUE), "Defect?", OPTIONS)


def test_stage1_prompt():
    prompt = stage1_prompt(solid(RED), solid(BLUE), category="breakfast_box")
    assert [im.getpixel((0, 0)) for im in prompt.images] == [BLUE, RED]
    text = prompt.text
    at = positions(
        text,
        "Following is 1 image of normal sample",
        "<image>",
        QUERY_INTRO,
        "<image>",
        "breakfast box",
        "<seg>",
        "<think>",
    )
    assert -1 not in at and at == sorted(at)
    assert "<answer>" not in text


def test_stage2_prompt():
    prompt = stage2_prompt("  What does a bent lead look like?  ", solid(GREEN), category="transistor")
    assert len(prompt.images) == 1 and prompt.images[0].size == (IMAGE_SIZE, IMAGE_SIZE)
    assert prompt.text == (
        "Following is an image of a normal transistor sample.<image>What does a bent lead look like?"
    )
    assert "normal product sample" in stage2_prompt("Why?", solid(GREEN)).text
    with pytest.raises(PromptError):
        stage2_prompt("", solid(GREEN))


def test_prompt_checks_placeholders_match_images():
    with pytest.raises(PromptError, match="1 image placeholders but 0 images"):
        Prompt([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}], [])
