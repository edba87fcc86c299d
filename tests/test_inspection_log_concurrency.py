"""20 inspections at once in threads and 20 in separate processes, all writing one log: no row lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from judo.inspection_log import InspectionLog
from tests.inspection_records import record_copy

REPO = Path(__file__).resolve().parents[1]
WRITERS = 20
ROWS_EACH = 5

# One process: open the log itself, wait for the start signal, write its rows, report its problems.
WRITER = """
import json, os, sys, time
from judo.inspection_log import InspectionLog
path, record_file, go, name, rows = sys.argv[1:6]
record = json.loads(open(record_file, encoding="utf-8").read())
log = InspectionLog.open(path)
while not os.path.exists(go):
    time.sleep(0.005)
problems = [log.add_record(record, user=name, part=f"{name}-{i}", kind="batch") for i in range(int(rows))]
print(json.dumps([p for p in problems if p]))
"""


def test_threads_and_processes_lose_no_row(tmp_path):
    path = tmp_path / "inspections.sqlite"
    log = InspectionLog.open(path)
    record = record_copy()
    record_file = tmp_path / "record.json"
    record_file.write_text(json.dumps(record), encoding="utf-8")
    go = tmp_path / "go"

    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(record_file), str(go), f"proc{i}", str(ROWS_EACH)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WRITERS)
    ]
    problems: list[str] = []
    start = threading.Barrier(WRITERS + 1)

    def thread_writer(i: int) -> None:
        start.wait()
        for k in range(ROWS_EACH):
            problem = log.add_record(record, user=f"thread{i}", part=f"thread{i}-{k}", kind="single")
            if problem:
                problems.append(problem)

    threads = [threading.Thread(target=thread_writer, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # let the processes start and open the log, then release everyone at once
    go.touch()
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join(timeout=60)
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        problems += json.loads(out)
    elapsed = time.perf_counter() - t0

    assert problems == []
    expected = {
        f"{who}{i}-{k}" for who in ("thread", "proc") for i in range(WRITERS) for k in range(ROWS_EACH)
    }
    rows = log.query(limit=None)
    assert len(rows) == log.count() == 2 * WRITERS * ROWS_EACH
    assert {r.part for r in rows} == expected  # every row, each once
    assert log.count(kind="batch") == log.count(kind="single") == WRITERS * ROWS_EACH
    assert all(r.record == record for r in rows[:: ROWS_EACH * 4])
    print(f"{len(rows)} rows from {2 * WRITERS} writers in {elapsed:.2f} s")
