"""Batch inspection core and `judo inspect --folder`: discovery (folder, zip, hostile archives), resume
after a rerun, a Stop, a kill -9 and two runs at once, and the exports (CSV, HTML report)."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

import judo.batch.parts as parts_mod
from judo.batch import BatchSpec, discover, discover_zip, run_batch
from judo.batch.parts import BatchInputError
from judo.batch.report import export, load_results
from judo.batch.tray import make_tray
from judo.engines.comparator import ComparatorEngine
from judo.images import load_image
from judo.inspect_cli import main as inspect_main
from judo.jsonl import read_jsonl

REPO = Path(__file__).resolve().parents[1]
PARTS = 5


@pytest.fixture(scope="module")
def tray(tmp_path_factory):
    return make_tray(tmp_path_factory.mktemp("tray"), PARTS, golden=2, size=256, seed=1)


@pytest.fixture
def parts(tray, tmp_path) -> Path:
    folder = tmp_path / "parts"
    shutil.copytree(tray.parts[0].parent, folder)
    return folder


def spec(tray, out: Path) -> BatchSpec:
    return BatchSpec(
        ComparatorEngine(), [load_image(p) for p in tray.golden], out, template_names=["g0", "g1"]
    )


def lines(out: Path) -> list[dict]:
    return [row for _, row in read_jsonl(out / "results.jsonl")]


def test_folder_discovery_is_sorted_lists_skips_and_recurses_only_when_asked(parts) -> None:
    (parts / "notes.txt").write_text("not a part")
    (parts / ".DS_Store").write_bytes(b"\0")
    (parts / "sub").mkdir()
    shutil.copy(parts / "part-000.png", parts / "sub" / "deep.png")
    os.symlink("/etc/passwd", parts / "link.png")
    flat = discover(parts)
    assert [p.name for p in flat.parts] == [f"part-{i:03d}.png" for i in range(PARTS)]
    reasons = {s.name: s.reason for s in flat.skipped}
    assert "not an image" in reasons["notes.txt"] and "hidden" in reasons[".DS_Store"]
    assert "symbolic link" in reasons["link.png"]
    deep = discover(parts, recursive=True)
    assert "sub/deep.png" in [p.name for p in deep.parts] and len(deep.parts) == PARTS + 1
    with pytest.raises(BatchInputError, match="not a folder|does not exist"):
        discover(parts / "missing")


def _zip(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16  # a symbolic link
            zf.writestr(info, target)
    return path


def test_zip_refuses_traversal_absolute_links_bombs_and_never_writes(tray, tmp_path) -> None:
    good = tray.parts[0].read_bytes()
    archive = _zip(
        tmp_path / "upload.zip",
        {
            "tray/a.png": good,
            "../../escape.png": good,
            "/abs/evil.png": good,
            "bomb.png": b"\0" * (8 * 2**20),  # 8 MB of zeros: > 200:1
            "readme.md": b"hello",
            "__MACOSX/._a.png": b"\0",
        },
        links={"link.png": "/etc/passwd"},
    )
    found = discover_zip(archive)
    assert [p.name for p in found.parts] == ["tray/a.png"]
    reasons = {s.name: s.reason for s in found.skipped}
    assert "leaves the archive" in reasons["../../escape.png"]
    assert "absolute" in reasons["/abs/evil.png"]
    assert "zip bomb" in reasons["bomb.png"]
    assert "symbolic link" in reasons["link.png"]
    assert "not an image" in reasons["readme.md"] and "__MACOSX/._a.png" in reasons
    assert load_image(found.parts[0].source()).size == (256, 256)
    assert not (tmp_path.parent / "escape.png").exists() and not Path("/abs/evil.png").exists()


def test_zip_member_count_and_unreadable_archives_are_clear_errors(tmp_path, monkeypatch) -> None:
    archive = _zip(tmp_path / "many.zip", {f"p{i}.png": b"x" for i in range(5)})
    monkeypatch.setattr(parts_mod, "MAX_MEMBERS", 4)
    with pytest.raises(BatchInputError, match="at most 4"):
        discover_zip(archive)
    (tmp_path / "fake.zip").write_bytes(b"PK not really")
    with pytest.raises(BatchInputError, match="not a readable zip"):
        discover(tmp_path / "fake.zip")


def test_corrupt_part_is_skipped_with_its_reason_and_the_rest_inspected(tray, parts, tmp_path) -> None:
    (parts / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    results = [p.result for p in run_batch(discover(parts), spec(tray, tmp_path / "out"))]
    by_part = {r.part: r for r in results}
    assert by_part["broken.png"].verdict == "skipped" and "broken.png" in by_part["broken.png"].error
    assert str(parts) not in by_part["broken.png"].error  # the name, not the server path
    inspected = [r for r in results if r.verdict != "skipped"]
    assert len(inspected) == PARTS and all(r.record and r.overlay and r.overlay.exists() for r in inspected)
    assert {r.verdict for r in inspected} <= {"defect", "borderline", "normal"}
    assert all(r.score is not None and r.answer in {"A (Yes.)", "B (No.)"} for r in inspected)
    assert (
        len(lines(tmp_path / "out")) == PARTS
    )  # the unreadable file is not written: a fixed copy is retried


def test_rerun_skips_finished_parts_and_writes_no_duplicate(tray, parts, tmp_path) -> None:
    out = tmp_path / "out"
    first = list(run_batch(discover(parts), spec(tray, out)))
    assert [p.done for p in first] == list(range(1, PARTS + 1)) and first[-1].total == PARTS
    again = [p.result for p in run_batch(discover(parts), spec(tray, out))]
    assert all(r.resumed for r in again) and len(lines(out)) == PARTS
    assert [r.verdict for r in again] == [p.result.verdict for p in first]
    shutil.copy(tray.parts[0], parts / "part-new.png")  # a new part in the tray: only it is inspected
    third = [p.result for p in run_batch(discover(parts), spec(tray, out))]
    assert [r.part for r in third if not r.resumed] == ["part-new.png"] and len(lines(out)) == PARTS + 1


def test_stop_keeps_what_finished_and_the_rerun_does_the_rest(tray, parts, tmp_path) -> None:
    out, stop = tmp_path / "out", threading.Event()
    seen = []
    for progress in run_batch(discover(parts), spec(tray, out), stop):
        seen.append(progress.result.part)
        if len(seen) == 2:
            stop.set()
    assert len(seen) == 2 and [r["part"] for r in lines(out)] == seen
    rest = [p.result for p in run_batch(discover(parts), spec(tray, out))]
    assert sum(not r.resumed for r in rest) == PARTS - 2
    names = [r["part"] for r in lines(out)]
    assert sorted(names) == sorted(set(names)) and len(names) == PARTS


def _cli(parts: Path, golden: list[Path], out: Path) -> list[str]:
    return [
        sys.executable, "-m", "judo.cli", "inspect", "--folder", str(parts), *map(str, golden),
        "--out", str(out), "--engine", "comparator", "--config", str(REPO / "configs" / "tiny.yaml"),
    ]  # fmt: skip


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}


@pytest.mark.slow
def test_killed_run_then_resume_loses_nothing(tray, parts, tmp_path) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(
        _cli(parts, tray.golden, out), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    results = out / "results.jsonl"
    deadline = time.monotonic() + 120
    while not (results.exists() and results.read_bytes().count(b"\n") >= 2):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the batch wrote nothing in time"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    kept = lines(out)
    assert 2 <= len(kept) < PARTS
    with open(results, "ab") as fh:  # as if the kill had cut a write in half
        fh.write(b'{"part": "part-004.png", "sha2')
    assert inspect_main(_cli(parts, tray.golden, out)[4:]) == 0
    rows = lines(out)
    assert sorted(r["part"] for r in rows) == [f"part-{i:03d}.png" for i in range(PARTS)]
    assert rows[: len(kept)] == kept  # what the killed run wrote is kept as it was


def test_two_runs_on_one_output_folder_inspect_each_part_once(tray, tmp_path) -> None:
    """Two runs at once (threads here: the claims and the results lock are OS file locks, the same
    between processes; the killed-run test covers a separate process)."""
    folder = tmp_path / "parts"
    folder.mkdir()
    for i in range(8):
        shutil.copy(tray.parts[i % PARTS], folder / f"p{i}.png")
    out, outcomes = tmp_path / "out", [[], []]
    start = threading.Barrier(2)

    def run(k: int) -> None:
        start.wait()
        outcomes[k] = [p.result for p in run_batch(discover(folder), spec(tray, out))]

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    names = [r["part"] for r in lines(out)]
    assert sorted(names) == [f"p{i}.png" for i in range(8)]  # each part once, none lost
    assert all(len(o) == 8 for o in outcomes)  # each run reports every part
    fresh = [r.part for o in outcomes for r in o if not r.resumed]
    assert sorted(fresh) == sorted(names)  # the work was shared: no part inspected twice
    assert all(fresh_k for fresh_k in ([r for r in o if not r.resumed] for o in outcomes))  # both worked


def test_report_escapes_names_embeds_every_overlay_and_links_nothing(tray, tmp_path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    hostile = '<img src=x onerror=alert(1)>&"q".png'
    for i, name in enumerate([hostile, "ok.png", "über ünïcode.png"]):
        shutil.copy(tray.parts[i], folder / name)
    (folder / "junk.png").write_bytes(b"nope")
    found = discover(folder)
    out = tmp_path / "out"
    results = [p.result for p in run_batch(found, spec(tray, out))]
    exports = export(results, out, {"engine": "<b>comparator</b>"})
    page = exports.html.read_text(encoding="utf-8")
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;&amp;&quot;q&quot;.png" in page
    assert "<b>comparator</b>" not in page
    assert len(re.findall(r'<img src="data:image/jpeg;base64,', page)) == 3
    assert page.count("<tr>") == 1 + 4  # header + 3 parts + the unreadable one
    assert not re.search(r"(https?:)?//[a-z]", page.replace("</", ""))  # no external resource at all
    assert exports.html.stat().st_size < 3 * 60_000  # small thumbnails: ~20 kB a part
    rows = list(csv.DictReader(io.StringIO(exports.csv.read_text(encoding="utf-8"))))
    assert [r["part"] for r in rows] == [r.part for r in results]
    assert set(rows[0]) == {"part", "verdict", "strongest score", "cells", "seconds", "answer", "error"}
    assert [r["verdict"] for r in rows if r["part"] == "junk.png"] == ["skipped"]
    assert [r.part for r in load_results(out)] == [r.part for r in results if r.verdict != "skipped"]


def test_cli_folder_end_to_end_and_exit_codes(tray, parts, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    args = ["--folder", str(parts), *map(str, tray.golden), "--out", str(out), "--engine", "comparator"]
    assert inspect_main(args) == 0
    printed = capsys.readouterr().out
    assert printed.count("\n[") + printed.startswith("[") == PARTS and f"{PARTS} parts:" in printed
    assert {"results.csv", "records.json", "report.html", "results.jsonl"} <= {p.name for p in out.iterdir()}
    archive = tmp_path / "tray.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(tray.parts[0], "in/zip.png")
        zf.writestr("in/broken.png", b"broken")
    assert inspect_main(["--zip", str(archive), *map(str, tray.golden), "--out", str(tmp_path / "z")]) == 1
    printed = capsys.readouterr().out
    assert "in/zip.png: " in printed and "in/broken.png: skipped" in printed
    assert inspect_main(["--folder", str(tmp_path / "nope"), str(tray.golden[0]), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        inspect_main(["--folder", str(parts), str(tray.golden[0])])  # no --out
    assert exit_.value.code == 2 and "--out is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the single form still needs a query and a template
        inspect_main([str(tray.golden[0]), "--question", "Is there any defect?"])
