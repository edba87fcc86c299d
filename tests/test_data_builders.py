"""The stage 1/2/3 data builders end to end, against a real HTTP teacher on 127.0.0.1.

The fake teacher answers like a cooperative GPT-4o would (prose for explanations and rationales, JSON
for Q&A and paraphrases), and is scripted to misbehave where a test needs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from judo.data.build import DATA_FILE, FAILURES_FILE, KEYS_FILE, MANIFEST_FILE, RAW_FILE, elide_images
from judo.data.cli import main as data_main
from judo.data.datasets import load_grpo_dataset, load_sft_dataset
from judo.data.replies import ReplyFormatError, parse_json_array, validate_paraphrases, validate_qa_pairs
from judo.data.store import ITEM_ID, JsonlStore, read_rows
from judo.grid import mask_to_cells, parse_seg
from judo.images import load_mask
from judo.mmad import load_mmad
from judo.prompts import IMAGE_SIZE, inspection_prompt, stage1_prompt
from tests.teacher_server import Fault, RecordedRequest, TeacherServer

REPO = Path(__file__).resolve().parents[1]
EXPLANATION = (
    "Compared with the template, the query shows an irregular dark mark on the upper part of the "
    "surface where the template is uniform, which is a typical sign of this defect."
)
RATIONALE = (
    "The query differs from the template in one region whose texture is disrupted; the domain "
    "knowledge describes this appearance as a defect, so the conclusion is the option naming it."
)


def _texts(request: dict) -> str:
    return "\n".join(RecordedRequest(0, "POST", "", {}, request).texts())


def teacher_reply(request: dict) -> str:
    """A well-behaved teacher for all four request kinds."""
    text = _texts(request)
    if "Paraphrase each question-answer pair" in text:
        pairs = json.loads(text.split("Pairs:\n", 1)[1])
        return json.dumps(
            [
                {
                    "id": p["id"],
                    "paraphrases": [
                        {
                            "question": f"In other words, {p['question']}",
                            "answer": f"Put differently: {p['answer']}",
                        },
                        {
                            "question": f"Could you explain: {p['question']}",
                            "answer": f"Namely, {p['answer']}",
                        },
                    ],
                }
                for p in pairs
            ]
        )
    if "question-answer pairs" in text:
        count = int(re.search(r"Write exactly (\d+)", text).group(1))
        topic = re.search(r'topic: "([^"]+)"', text).group(1)
        return (
            "```json\n"
            + json.dumps(
                [
                    {
                        "question": f"What sign number {i} marks {topic} on this product?",
                        "answer": f"Sign {i} of {topic} is a visible change.",
                        "style": "criteria",
                    }
                    for i in range(count)
                ]
            )
            + "\n```"
        )
    if "Inspection question" in text:
        return RATIONALE
    return EXPLANATION


def teacher_args(server: TeacherServer, *extra: str) -> list[str]:
    return [
        "--base-url",
        server.base_url,
        "--model",
        "fake-teacher",
        "--max-retries",
        "0",
        "--max-concurrency",
        "2",
        *extra,
    ]


def rows_of(folder: Path) -> list[dict]:
    return read_rows(folder / DATA_FILE)


@pytest.fixture(scope="module")
def built(mmad_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """All three stages built once (small: every stage-1 image, 3 snippets, 10 questions)."""
    out = tmp_path_factory.mktemp("built")
    with TeacherServer(reply=teacher_reply) as server:
        assert (
            data_main(["stage1", "--mmad", str(mmad_root), "--out", str(out / "s1"), *teacher_args(server)])
            == 0
        )
        calls1 = server.calls
        assert (
            data_main(
                [
                    "stage2",
                    "--mmad",
                    str(mmad_root),
                    "--out",
                    str(out / "s2"),
                    "--count",
                    "4",
                    "--paraphrase-chunk",
                    "3",
                    "--limit",
                    "3",
                    *teacher_args(server),
                ]
            )
            == 0
        )
        calls2 = server.calls - calls1
        assert (
            data_main(
                [
                    "stage3",
                    "--mmad",
                    str(mmad_root),
                    "--stage1",
                    str(out / "s1"),
                    "--out",
                    str(out / "s3"),
                    "--limit",
                    "10",
                    *teacher_args(server),
                ]
            )
            == 0
        )
        requests = list(server.requests)
    return {"out": out, "calls1": calls1, "calls2": calls2, "requests": requests}


# --------------------------------------------------------------------------------------- stage 1


def test_stage1_one_image_per_defect_type_with_seg_from_mask(built: dict, mmad_root: Path) -> None:
    mmad = load_mmad(mmad_root)
    groups = {(s.dataset, s.category, s.defect) for s in mmad.samples.values() if not s.is_normal}
    rows = rows_of(built["out"] / "s1")
    assert len(rows) == len(groups) == built["calls1"]
    assert {(r["dataset"], r["category"], r["defect"]) for r in rows} == groups
    for row in rows:
        sample = mmad.samples[row["mmad_key"]]
        truth = mask_to_cells(load_mask(sample.mask_path))
        completion = row["completion"][0]["content"]
        assert re.fullmatch(r"<seg> .+ </seg><think>.+</think>", completion, re.S)
        assert parse_seg(completion) == truth == {tuple(c) for c in row["seg"]}
        assert EXPLANATION in completion
        assert row["template"].startswith("MVTec-AD/") or "/train/good/" in row["template"]
        # the student prompt is judo.prompts' stage-1 prompt, images saved at the model size in order
        expected = stage1_prompt(Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8)), category=row["category"])
        assert row["prompt"] == expected.messages
        images = [Image.open(built["out"] / "s1" / p) for p in row["images"]]
        assert [im.size for im in images] == [(IMAGE_SIZE, IMAGE_SIZE)] * 2
    manifest = json.loads((built["out"] / "s1" / MANIFEST_FILE).read_text())
    assert manifest["stage"] == "stage1" and manifest["complete"] is True
    assert manifest["mmad_keys"] == sorted(r["mmad_key"] for r in rows)
    from judo.evaluate.selection import read_manifest  # what `judo eval --exclude` reads

    assert read_manifest(built["out"] / "s1" / KEYS_FILE) == set(manifest["mmad_keys"])


def test_stage1_teacher_sees_template_and_red_outlined_query(built: dict) -> None:
    request = next(r for r in built["requests"] if "comparative explanation" in _texts(r.body))
    assert request.model == "fake-teacher"
    urls = request.image_urls()
    assert len(urls) == 2 and all(u.startswith("data:image/png;base64,") for u in urls)
    assert "outlined in red" in _texts(request.body)
    raw = [json.loads(line) for line in (built["out"] / "s1" / RAW_FILE).read_text().splitlines()]
    assert raw[0]["reply"]["choices"][0]["message"]["content"] == EXPLANATION
    assert "base64" not in json.dumps(raw[0]["request"])  # images elided in the log


def test_stage1_is_reproducible_for_a_seed(built: dict, mmad_root: Path, tmp_path: Path) -> None:
    with TeacherServer(reply=teacher_reply) as server:
        assert (
            data_main(
                ["stage1", "--mmad", str(mmad_root), "--out", str(tmp_path / "again"), *teacher_args(server)]
            )
            == 0
        )
    first = {r["mmad_key"]: (r["template"], r["images"]) for r in rows_of(built["out"] / "s1")}
    second = {r["mmad_key"]: (r["template"], r["images"]) for r in rows_of(tmp_path / "again")}
    assert first == second


# --------------------------------------------------------------------------------------- stage 2


def test_stage2_pairs_with_paraphrases_and_normal_images(built: dict) -> None:
    rows = rows_of(built["out"] / "s2")
    assert len(rows) == 3 * 4 * 3  # snippets x pairs x (original + 2 paraphrases)
    assert built["calls2"] == 3 * (1 + 2)  # one generation + two paraphrase chunks (3 + 1 pairs) per snippet
    by_pair: dict = {}
    for row in rows:
        by_pair.setdefault((row[ITEM_ID], row["pair"]), []).append(row)
        assert row["completion"][0]["content"] == row["answer"]
        assert row["prompt"][0]["content"][-1]["text"].endswith(row["question"])
        assert Image.open(built["out"] / "s2" / row["images"][0]).size == (IMAGE_SIZE, IMAGE_SIZE)
        assert "/train/good/" in row["image_source"]  # a normal template image, never an eval query
    assert all(sorted(r["variant"] for r in group) == [0, 1, 2] for group in by_pair.values())
    assert len({r["question"] for r in rows}) == len(rows)


def test_stage2_repairs_malformed_json_then_skips_with_a_reason(mmad_root: Path, tmp_path: Path) -> None:
    def broken_first(request: dict) -> str:
        if "question-answer pairs" in _texts(request) and "could not be used" not in _texts(request):
            return '[{"question": "What is it?", "answer": "A thing.",}]'  # trailing comma: not JSON
        return teacher_reply(request)

    with TeacherServer(reply=broken_first) as server:
        code = data_main(
            [
                "stage2",
                "--mmad",
                str(mmad_root),
                "--out",
                str(tmp_path / "ok"),
                "--count",
                "2",
                "--limit",
                "1",
                *teacher_args(server),
            ]
        )
        assert code == 0
        repair = [r for r in server.requests if "could not be used" in _texts(r.body)]
        assert len(repair) == 1 and "malformed" in _texts(repair[0].body)
    assert len(rows_of(tmp_path / "ok")) == 2 * 3

    with TeacherServer(reply=lambda req: "I cannot help with that.") as server:
        code = data_main(
            [
                "stage2",
                "--mmad",
                str(mmad_root),
                "--out",
                str(tmp_path / "bad"),
                "--count",
                "2",
                "--limit",
                "1",
                *teacher_args(server),
            ]
        )
        assert code == 1 and server.calls == 2  # the request and one repair, then skipped
    failures = [json.loads(x) for x in (tmp_path / "bad" / FAILURES_FILE).read_text().splitlines()]
    assert len(failures) == 1 and "no JSON array" in failures[0]["reason"]
    assert not (tmp_path / "bad" / DATA_FILE).exists() or not rows_of(tmp_path / "bad")


def test_reply_validation() -> None:
    assert parse_json_array('Sure!\n```json\n[{"a": 1}]\n```') == [{"a": 1}]
    assert parse_json_array('{"pairs": [{"a": 1}]}') == [{"a": 1}]
    for bad in ("", "no json here", "[{'single': 'quotes'}]", '{"a": 1}'):
        with pytest.raises(ReplyFormatError):
            parse_json_array(bad)
    checked = validate_qa_pairs(
        [
            {"question": "What does a crack look like?", "answer": "A thin dark line."},
            {"question": "what does a CRACK look like", "answer": "Duplicate."},
            {"question": "According to the text, what is a hole?", "answer": "An opening."},
            {"question": "Why does the snippet matter?", "answer": "x"},
            {"question": "", "answer": "no question"},
            "not an object",
        ]
    )
    assert [p["question"] for p in checked.pairs] == ["What does a crack look like?"]
    assert len(checked.problems) == 5
    originals = [{"question": "What is a hole?", "answer": "An opening."}]
    found, problems = validate_paraphrases(
        [
            {
                "id": 1,
                "paraphrases": [
                    {"question": "What is a hole?", "answer": "same as original"},
                    {"question": "Define a hole.", "answer": "An opening."},
                ],
            }
        ],
        originals,
    )
    assert found == {} and problems  # the first "paraphrase" repeats the question: only one usable
    found, _ = validate_paraphrases(
        [
            {
                "id": "1",
                "paraphrases": [
                    {"question": "Define a hole.", "answer": "An opening."},
                    {"question": "How is a hole described?", "answer": "As an opening."},
                ],
            }
        ],
        originals,
    )
    assert len(found[1]) == 2


# --------------------------------------------------------------------------------------- stage 3


def test_stage3_questions_of_stage1_images_with_truth_columns(built: dict, mmad_root: Path) -> None:
    mmad = load_mmad(mmad_root)
    rows = rows_of(built["out"] / "s3")
    assert len(rows) == 10
    stage1 = {r["mmad_key"]: r for r in rows_of(built["out"] / "s1")}
    for row in rows:
        sample = mmad.samples[row["mmad_key"]]
        index = int(row["question_key"].rsplit("#", 1)[1])
        question = sample.questions[index]
        assert row["answer"] == question.answer and row["rationale"] == RATIONALE
        assert row["seg"] == stage1[row["mmad_key"]]["seg"]
        assert json.loads(row["options"]) == question.options
        probe = inspection_prompt(
            Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8)), question.text, question.options, style="judo"
        )
        assert row["prompt"] == probe.messages
    request = next(r for r in built["requests"] if "Inspection question" in _texts(r.body))
    text = _texts(request.body)
    assert "Correct answer:" in text and EXPLANATION in text and len(request.image_urls()) == 2
    manifest = json.loads((built["out"] / "s3" / MANIFEST_FILE).read_text())
    assert set(manifest["mmad_keys"]) <= set(stage1) and len(manifest["question_keys"]) == 10


def test_stage3_needs_a_stage1_folder(mmad_root: Path, tmp_path: Path, capsys) -> None:
    code = data_main(
        [
            "stage3",
            "--mmad",
            str(mmad_root),
            "--stage1",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "s3"),
            "--base-url",
            "http://127.0.0.1:9/v1",
        ]
    )
    assert code == 2 and "build stage 1 first" in capsys.readouterr().err


# --------------------------------------------------------------------------------------- datasets


def test_outputs_load_as_trl_datasets(built: dict) -> None:
    sft = load_sft_dataset(built["out"] / "s1")
    assert set(sft.column_names) == {"prompt", "completion", "images"}
    first = sft[0]
    assert [im.size for im in first["images"]] == [(IMAGE_SIZE, IMAGE_SIZE)] * 2
    placeholders = [p for p in first["prompt"][0]["content"] if p["type"] == "image"]
    assert len(placeholders) == 2 and first["completion"][0]["role"] == "assistant"
    assert len(load_sft_dataset(built["out"] / "s2")) == 36
    grpo = load_grpo_dataset(built["out"] / "s3")
    assert {"prompt", "images", "answer", "seg", "rationale", "options"} <= set(grpo.column_names)
    assert grpo[0]["answer"] in "ABCDE" and grpo[0]["seg"] and grpo[0]["rationale"] == RATIONALE
    think = load_grpo_dataset(built["out"] / "s3", prompt_style="think")
    assert "<seg>" not in json.dumps(think[0]["prompt"]) and "<think>" in json.dumps(think[0]["prompt"])
    with pytest.raises(Exception, match="stage3"):
        load_grpo_dataset(built["out"] / "s1")


def test_rows_missing_fields_are_named_before_loading(built: dict, tmp_path: Path) -> None:
    from judo.data.build import DataBuildError

    for stage, field, load in (
        ("s3", "rationale", load_grpo_dataset),
        ("s1", "completion", load_sft_dataset),
    ):
        copy = tmp_path / stage
        shutil.copytree(built["out"] / stage, copy)
        rows = read_rows(copy / DATA_FILE)
        del rows[1][field]
        (copy / DATA_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
        with pytest.raises(DataBuildError, match=f"row 2 lacks '{field}'.*rebuild it"):
            load(copy)


# --------------------------------------------------------------------------------------- resume


def test_rerun_skips_finished_items(built: dict, mmad_root: Path) -> None:
    before = (built["out"] / "s1" / DATA_FILE).read_bytes()
    with TeacherServer(reply=teacher_reply) as server:
        assert (
            data_main(
                ["stage1", "--mmad", str(mmad_root), "--out", str(built["out"] / "s1"), *teacher_args(server)]
            )
            == 0
        )
        assert server.calls == 0
    assert (built["out"] / "s1" / DATA_FILE).read_bytes() == before


def test_killed_build_resumes_without_duplicates_or_losses(mmad_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "s1"
    with TeacherServer(reply=teacher_reply, delay_s=0.4) as server:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "judo.data.cli",
                "stage1",
                "--mmad",
                str(mmad_root),
                "--out",
                str(out),
                *teacher_args(server),
                "--max-concurrency",
                "1",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if (out / DATA_FILE).exists() and len((out / DATA_FILE).read_text().splitlines()) >= 3:
                    break
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
    done_before = {r[ITEM_ID] for r in rows_of(out)}
    assert 3 <= len(done_before) < 12
    with open(out / DATA_FILE, "a") as f:  # a write torn by the kill
        f.write('{"item_id": "DS-MVTec/bottle/image/xx.png", "item_rows": 1, "prompt": [{"ro')
    with TeacherServer(reply=teacher_reply) as server:
        assert data_main(["stage1", "--mmad", str(mmad_root), "--out", str(out), *teacher_args(server)]) == 0
        asked = server.calls
    rows = rows_of(out)
    ids = [r[ITEM_ID] for r in rows]
    assert len(ids) == len(set(ids)) == 12
    assert asked == 12 - len(done_before)
    assert all(line.strip() for line in (out / DATA_FILE).read_text().splitlines())


def test_store_repairs_torn_lines_and_incomplete_items(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    store = JsonlStore(path)
    store.append_item("a", [{"x": 1}])
    store.append_item("b", [{"x": 2}, {"x": 3}])
    store.close()
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + lines[1] + '{"item_id": "c", "ite')  # b lost its second row, c torn
    reopened = JsonlStore(path)
    assert reopened.done == {"a"} and len(reopened.repaired) == 2
    assert [json.loads(x)["item_id"] for x in path.read_text().splitlines()] == ["a"]
    with pytest.raises(Exception, match="already"):
        reopened.append_item("a", [{"x": 9}])


# --------------------------------------------------------------------------------------- faults


def test_failing_endpoint_records_failures_and_exits_1(mmad_root: Path, tmp_path: Path, capsys) -> None:
    with TeacherServer(faults=lambda i, body: Fault.http(503)) as server:
        code = data_main(
            [
                "stage1",
                "--mmad",
                str(mmad_root),
                "--out",
                str(tmp_path / "s1"),
                "--limit",
                "2",
                *teacher_args(server),
            ]
        )
    assert code == 1
    failures = [json.loads(x) for x in (tmp_path / "s1" / FAILURES_FILE).read_text().splitlines()]
    assert len(failures) == 2 and all("HTTP 503" in f["reason"] for f in failures)
    assert "rerun the same command" in capsys.readouterr().out
    # the next run retries exactly those items
    with TeacherServer(reply=teacher_reply) as server:
        assert (
            data_main(
                [
                    "stage1",
                    "--mmad",
                    str(mmad_root),
                    "--out",
                    str(tmp_path / "s1"),
                    "--limit",
                    "2",
                    *teacher_args(server),
                ]
            )
            == 0
        )
        assert server.calls == 2


def test_empty_teacher_reply_is_a_logged_failure(mmad_root: Path, tmp_path: Path) -> None:
    with TeacherServer(faults=lambda i, body: Fault.empty_content()) as server:
        code = data_main(
            [
                "stage1",
                "--mmad",
                str(mmad_root),
                "--out",
                str(tmp_path / "s1"),
                "--limit",
                "1",
                *teacher_args(server),
            ]
        )
    assert code == 1
    reason = json.loads((tmp_path / "s1" / FAILURES_FILE).read_text().splitlines()[0])["reason"]
    assert "empty" in reason


def test_auth_failure_stops_at_once(mmad_root: Path, tmp_path: Path, capsys) -> None:
    with TeacherServer(reply=teacher_reply, api_key="right") as server:
        os.environ["JUDO_TEST_BAD_KEY"] = "wrong"
        code = data_main(
            [
                "stage1",
                "--mmad",
                str(mmad_root),
                "--out",
                str(tmp_path / "s1"),
                *teacher_args(server),
                "--api-key-env",
                "JUDO_TEST_BAD_KEY",
            ]
        )
        assert server.calls <= 2  # the two requests already in flight at most
    assert code == 3 and "JUDO_TEST_BAD_KEY" in capsys.readouterr().err


def _copy_root(mmad_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "MMAD"
    shutil.copytree(mmad_root, root)
    return root


def test_missing_image_is_a_clear_error_or_skipped(mmad_root: Path, tmp_path: Path, capsys) -> None:
    root = _copy_root(mmad_root, tmp_path)
    victim = next(s for s in load_mmad(root).samples.values() if not s.is_normal)
    # remove every image of the victim's defect group so that whatever is chosen is missing
    for sample in load_mmad(root).samples.values():
        if (sample.dataset, sample.category, sample.defect) == (
            victim.dataset,
            victim.category,
            victim.defect,
        ):
            sample.image_path.unlink()
    code = data_main(
        ["stage1", "--mmad", str(root), "--out", str(tmp_path / "s1"), "--base-url", "http://127.0.0.1:9/v1"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "missing file" in err and victim.category in err and "--skip-bad" in err
    with TeacherServer(reply=teacher_reply) as server:
        assert (
            data_main(
                [
                    "stage1",
                    "--mmad",
                    str(root),
                    "--out",
                    str(tmp_path / "s1"),
                    "--skip-bad",
                    *teacher_args(server),
                ]
            )
            == 0
        )
    assert len(rows_of(tmp_path / "s1")) == 11


def test_mask_that_does_not_match_its_image_is_a_clear_error(mmad_root: Path, tmp_path: Path, capsys) -> None:
    root = _copy_root(mmad_root, tmp_path)
    mmad = load_mmad(root)
    for sample in mmad.samples.values():
        if sample.mask_path:
            mask = np.array(Image.open(sample.mask_path))
            Image.fromarray(mask[: mask.shape[0] // 2]).save(sample.mask_path)
    code = data_main(
        [
            "stage1",
            "--mmad",
            str(root),
            "--out",
            str(tmp_path / "s1"),
            "--limit",
            "1",
            "--base-url",
            "http://127.0.0.1:9/v1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and re.search(r"mask .* is \d+x\d+ but its image .* is \d+x\d+", err)


def test_missing_mmad_root_is_a_clear_error(tmp_path: Path, capsys) -> None:
    code = data_main(
        [
            "stage2",
            "--mmad",
            str(tmp_path / "nowhere"),
            "--out",
            str(tmp_path / "o"),
            "--base-url",
            "http://127.0.0.1:9/v1",
        ]
    )
    assert code == 2 and "nowhere" in capsys.readouterr().err


# --------------------------------------------------------------------------------------- dry run


def test_dry_run_prints_exact_requests_and_sends_nothing(mmad_root: Path, tmp_path: Path, capsys) -> None:
    with TeacherServer(reply=teacher_reply) as server:
        assert (
            data_main(
                [
                    "stage1",
                    "--mmad",
                    str(mmad_root),
                    "--out",
                    str(tmp_path / "s1"),
                    "--dry-run",
                    "--limit",
                    "1",
                    *teacher_args(server),
                ]
            )
            == 0
        )
        assert server.calls == 0
        endpoint = server.base_url + "/chat/completions"
    out = capsys.readouterr().out
    assert "POST " + endpoint in out
    body = json.loads(out.split("\n", 1)[1])
    assert body["model"] == "fake-teacher" and "comparative explanation" in json.dumps(body)
    assert re.search(r"<image/png data URL, \d+ bytes>", out) and "base64," not in out
    assert not (tmp_path / "s1").exists()


def test_elide_images_keeps_everything_else() -> None:
    body = {
        "messages": [
            {
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "text", "text": "hi"},
                ]
            }
        ],
        "model": "m",
    }
    assert elide_images(body) == {
        "messages": [
            {
                "content": [
                    {"type": "image_url", "image_url": {"url": "<image/png data URL, 3 bytes>"}},
                    {"type": "text", "text": "hi"},
                ]
            }
        ],
        "model": "m",
    }


# --------------------------------------------------------------------------------------- Real-IAD


def _realiad_root(tmp_path: Path) -> Path:
    from judo.synthetic import make_product, paint_defect

    rng = np.random.default_rng(0)
    root = tmp_path / "realiad_1024"
    for category in ("toy", "button"):
        for i in range(2):
            ok = root / category / "OK" / f"S{i:04d}"
            ok.mkdir(parents=True)
            make_product("bottle", 96, rng).save(ok / f"{category}_{i}_OK_C1.jpg")
        for i in range(3):
            ng = root / category / "NG" / "HS" / f"S{i:04d}"
            ng.mkdir(parents=True)
            img, mask = paint_defect(make_product("bottle", 96, rng), "scratch", rng)
            img.save(ng / f"{category}_{i}_NG_HS_C1.jpg")
            Image.fromarray(mask.astype(np.uint8) * 255).save(ng / f"{category}_{i}_NG_HS_C1.png")
    return root


def test_stage1_with_realiad(mmad_root: Path, tmp_path: Path) -> None:
    realiad = _realiad_root(tmp_path)
    with TeacherServer(reply=teacher_reply) as server:
        assert (
            data_main(
                [
                    "stage1",
                    "--mmad",
                    str(mmad_root),
                    "--out",
                    str(tmp_path / "s1"),
                    "--realiad",
                    str(realiad),
                    "--realiad-per-category",
                    "2",
                    *teacher_args(server),
                ]
            )
            == 0
        )
    rows = rows_of(tmp_path / "s1")
    extra = [r for r in rows if r["source"] == "realiad"]
    assert len(extra) == 4 and {r["defect"] for r in extra} == {"scratch"}
    assert all(r["mmad_key"] is None and r["template"].split("/")[1] == "OK" for r in extra)
    manifest = json.loads((tmp_path / "s1" / MANIFEST_FILE).read_text())
    assert len(manifest["realiad_keys"]) == 4 and len(manifest["mmad_keys"]) == 12


def test_a_second_build_into_the_same_folder_is_refused(mmad_root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "s1"
    store = JsonlStore(out / DATA_FILE)  # the first build, still writing
    try:
        with TeacherServer() as server:
            code = data_main(
                ["stage1", "--mmad", str(mmad_root), "--out", str(out), "--limit", "2", *teacher_args(server)]
            )
            assert code == 2 and server.requests == []
    finally:
        store.close()
    err = capsys.readouterr().err
    assert "is being written by another run" in err and "Traceback" not in err
    assert (out / DATA_FILE).read_text() == ""
