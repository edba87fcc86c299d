"""Loading a built stage folder as a Hugging Face `datasets.Dataset` that TRL 1.16 takes as is.

SFT (stages 1 and 2): conversational prompt-completion rows with an `images` column; the user turn's
`{"type": "image"}` placeholders are filled by TRL in order, and the loss covers the completion only
(TRL's default for prompt-completion data).

GRPO (stage 3): conversational `prompt` + `images`, and the truth columns the rewards read: `answer`,
`seg`, `rationale` (+ `options`). Every other column reaches the reward functions as a keyword.

Images are stored as paths relative to the stage folder and decoded lazily by `datasets.Image`. All
message contents are made lists of `{"type", "text"}` parts, so Arrow sees one schema for every row
(a mix of string and list contents would not load).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from judo.data.build import DATA_FILE, MANIFEST_FILE, DataBuildError
from judo.data.store import read_rows

SFT_COLUMNS = ("prompt", "completion", "images")
GRPO_COLUMNS = ("prompt", "images", "answer", "seg", "rationale", "options", "question_key")


def _parts(content: Any) -> list[dict[str, str | None]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [{"type": p["type"], "text": p.get("text") if p["type"] == "text" else None} for p in content]


def _messages(messages: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": _parts(m["content"])} for m in messages]


def stage_rows(folder: str | Path, *, expect: tuple[str, ...]) -> tuple[Path, list[dict]]:
    """The rows of a built stage folder, after checking its manifest says one of the `expect` stages."""
    folder = Path(folder)
    manifest = folder / MANIFEST_FILE
    if not manifest.is_file():
        raise DataBuildError(
            f"{folder} is not a built stage folder (no {MANIFEST_FILE}); run `judo data` first"
        )
    stage = json.loads(manifest.read_text()).get("stage")
    if stage not in expect:
        raise DataBuildError(f"{folder} holds {stage!r} data; this recipe needs {' or '.join(expect)}")
    rows = read_rows(folder / DATA_FILE)
    if not rows:
        raise DataBuildError(f"{folder / DATA_FILE} has no rows yet; finish the build first")
    return folder, rows


def _check_fields(folder: Path, rows: list[dict], needed: tuple[str, ...]) -> None:
    """Every row has every field a loader reads; otherwise one error naming the rows and the fields
    (a hand-edited file, or one from another tool), instead of a bare KeyError mid-load."""
    bad = [(i, [k for k in needed if k not in row]) for i, row in enumerate(rows, 1)]
    bad = [(i, missing) for i, missing in bad if missing]
    if bad:
        shown = "; ".join(f"row {i} lacks {', '.join(map(repr, missing))}" for i, missing in bad[:3])
        more = f" (and {len(bad) - 3} more rows)" if len(bad) > 3 else ""
        raise DataBuildError(f"{folder / DATA_FILE}: {shown}{more}; rebuild it with `judo data`")


def _images(folder: Path, paths: list[str]) -> list[str]:
    out = []
    for rel in paths:
        path = folder / rel
        if not path.is_file():
            raise DataBuildError(f"image {path} listed in {folder / DATA_FILE} is missing")
        out.append(str(path))
    return out


def _to_dataset(records: dict[str, list], image_column: str = "images"):
    import datasets

    ds = datasets.Dataset.from_dict(records)
    return ds.cast_column(image_column, datasets.Sequence(datasets.Image()))


def load_sft_dataset(folder: str | Path, *, stages: tuple[str, ...] = ("stage1", "stage2")):
    """Stage-1 or stage-2 folder -> Dataset(prompt, completion, images)."""
    folder, rows = stage_rows(folder, expect=stages)
    _check_fields(folder, rows, SFT_COLUMNS)
    records: dict[str, list] = {c: [] for c in SFT_COLUMNS}
    for row in rows:
        records["prompt"].append(_messages(row["prompt"]))
        records["completion"].append(_messages(row["completion"]))
        records["images"].append(_images(folder, row["images"]))
    return _to_dataset(records)


def _restyled_prompt(row: dict, images: list[str], style: str) -> list[dict]:
    """The row's question asked with another output instruction (e.g. the Base GRPO ablation's).

    Rebuilt by judo.prompts from the saved 448x448 images (template first, query last), so the
    prompt text still comes from the one place that writes prompts.
    """
    from judo.images import load_image
    from judo.prompts import inspection_prompt

    options = json.loads(row["options"]) if isinstance(row.get("options"), str) else row.get("options")
    prompt = inspection_prompt(
        load_image(images[-1]), load_image(images[0]), row["question"], options, style=style
    )
    if len(prompt.images) != len(images):
        raise DataBuildError(
            f"style {style!r} makes a prompt with {len(prompt.images)} images, "
            f"the stored rows have {len(images)}"
        )
    return prompt.messages


def load_grpo_dataset(folder: str | Path, *, prompt_style: str | None = None):
    """Stage-3 folder -> Dataset(prompt, images, answer, seg, rationale, options, question_key).

    `prompt_style=None` keeps the stored JUDO prompts; another judo.prompts style re-asks each question
    with that style's output instruction (the images and the truth columns stay the same).
    """
    folder, rows = stage_rows(folder, expect=("stage3",))
    needed = tuple(c for c in GRPO_COLUMNS if c != "options")  # options is optional
    _check_fields(folder, rows, needed + (("question",) if prompt_style is not None else ()))
    records: dict[str, list] = {c: [] for c in GRPO_COLUMNS}
    for row in rows:
        images = _images(folder, row["images"])
        prompt = row["prompt"] if prompt_style is None else _restyled_prompt(row, images, prompt_style)
        records["prompt"].append(_messages(prompt))
        records["images"].append(images)
        records["answer"].append(row["answer"])
        records["seg"].append([[int(r), int(c)] for r, c in row["seg"]])
        records["rationale"].append(row["rationale"])
        options = row.get("options")
        records["options"].append(options if isinstance(options, str) else json.dumps(options or {}))
        records["question_key"].append(row["question_key"])
    return _to_dataset(records)
