"""The one resumable JSON-lines store: torn lines, corrupt lines, and two runs on one file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from judo.jsonl import JsonlError, JsonlFile, OutputInUse, read_jsonl

HOLDER = """
import sys, time
from judo.jsonl import JsonlFile
f = JsonlFile(sys.argv[1])
f.append([{"from": "holder"}])
print("holding", flush=True)
time.sleep(120)
"""


def test_append_then_reopen_reads_every_row(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with JsonlFile(path) as f:
        f.append([{"a": 1}, {"a": 2}])
        f.append([])
        f.append([{"a": 3}])
    with JsonlFile(path) as again:
        assert again.rows == [{"a": 1}, {"a": 2}, {"a": 3}]
        assert again.line_numbers == [1, 2, 3] and again.torn_bytes == 0


def test_a_torn_last_line_is_cut_and_a_complete_one_kept(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"a": 1}\n{"a": 2, "b"')
    with JsonlFile(path) as f:
        assert f.rows == [{"a": 1}] and f.torn_bytes == len('{"a": 2, "b"')
        f.append([{"a": 3}])
    assert path.read_text() == '{"a": 1}\n{"a": 3}\n'
    path.write_text('{"a": 1}\n{"a": 2}')  # complete JSON, only the newline missing: nothing is lost
    with JsonlFile(path) as f:
        assert f.rows == [{"a": 1}, {"a": 2}] and f.torn_bytes == 0
        f.append([{"a": 3}])
    assert [json.loads(x) for x in path.read_text().splitlines()] == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_a_corrupt_line_in_the_middle_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"a": 1}\nnot json\n{"a": 3}\n')
    with pytest.raises(JsonlError, match=r"out\.jsonl:2: not a JSON line"):
        JsonlFile(path)
    with pytest.raises(JsonlError, match=r"out\.jsonl:2: not a JSON line"):
        read_jsonl(path)
    with JsonlFile(tmp_path / "other.jsonl"):  # the failed open released its lock
        pass
    path.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(JsonlError, match=r":2: expected a JSON object, got list"):
        read_jsonl(path)


def test_a_second_writer_in_the_same_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with JsonlFile(path), pytest.raises(OutputInUse, match="being written by another run"):
        JsonlFile(path)
    with JsonlFile(path):  # released on close
        pass


def test_another_process_is_refused_until_the_holder_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(OutputInUse):
            JsonlFile(path)
        assert path.read_text() == '{"from": "holder"}\n'  # the refused run wrote nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    deadline = time.monotonic() + 10
    while True:  # the kernel drops the lock of a killed process; no stale lock survives kill -9
        try:
            with JsonlFile(path) as f:
                assert f.rows == [{"from": "holder"}]
            break
        except OutputInUse:
            assert time.monotonic() < deadline, "the lock outlived the killed holder"
            time.sleep(0.1)
