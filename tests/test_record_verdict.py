"""The verdict a record carries: one word per part, the same for the app, `judo inspect` and a batch."""

from __future__ import annotations

from judo.comparator.describe import says_yes
from judo.record import verdict_of

YES_NO = {"A": "Yes.", "B": "No."}


def _record(**kw):
    base = {
        "error": None,
        "stopped": False,
        "cells": [],
        "extra": {},
        "options": YES_NO,
        "question": "Is there any defect?",
    }
    base.update(kw)
    return base


def test_comparator_verdicts():
    cmp = {"valid": True, "borderline_decision": False}
    assert verdict_of(_record(extra={"comparator": cmp})) == "normal"
    assert verdict_of(_record(cells=[[3, 4]], extra={"comparator": cmp})) == "defect"
    assert (
        verdict_of(_record(cells=[[3, 4]], extra={"comparator": {**cmp, "borderline_decision": True}}))
        == "borderline"
    )
    assert verdict_of(_record(extra={"comparator": {**cmp, "valid": False}})) == "not comparable"
    assert verdict_of(_record(error="boom", extra={"comparator": cmp})) == "error"
    assert verdict_of(_record(stopped=True)) == "stopped"


def test_language_model_verdict_follows_its_yes_no_answer_then_its_cells():
    assert verdict_of(_record(answer_text="Yes.")) == "defect"
    assert verdict_of(_record(answer_text="No.", cells=[[1, 1]])) == "normal"
    assert verdict_of(_record(answer_text=None, cells=[[1, 1]])) == "defect"
    assert verdict_of(_record(question="Is the object free of defects?", answer_text="Yes.")) == "normal"


def test_says_yes_needs_one_yes_and_one_no():
    assert says_yes("Yes.", YES_NO, "Any defect?") is True
    assert says_yes("Top left.", {"A": "Top left.", "B": "Bottom."}, "Where?") is None
    assert says_yes(None, YES_NO, "Any defect?") is None
