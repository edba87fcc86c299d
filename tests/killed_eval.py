"""Run `judo eval` in a subprocess, SIGKILL it mid-run, and leave a torn line as a cut write would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from judo.evaluate.records import EvalRecord, read_records


def kill_eval_midway(args: list[str], out: Path, *, after: int, timeout_s: float = 300) -> list[EvalRecord]:
    """`judo eval ARGS` killed once `out` holds ``after`` lines; returns the records it had written, with
    the start of one more record appended (torn), as if the kill had cut a write in half."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "judo.cli", "eval", *args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if out.exists() and out.read_bytes().count(b"\n") >= after:
                break
            if proc.poll() is not None:
                pytest.fail(f"eval exited early: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.02)
        else:
            pytest.fail("eval wrote nothing in time")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    partial = read_records([out])
    with open(out, "ab") as fh:
        fh.write(partial[0].to_json().encode()[:25])
    return partial
