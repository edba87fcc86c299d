"""Batch throughput: parts per second of a tray through the comparator loop, `judo inspect --folder`
and the app's /batch endpoint.

A tray of --parts synthetic parts (judo.batch.tray: judo.synthetic products re-shot with
judo.synthetic.perturb, about 30% with a painted defect) at --size px and a bank of --golden normals
of the product, the comparator engine, three ways, each from cold comparator caches (the bank's
prepared normals and its calibration are built inside every timing):

- loop: `judo.comparator.build_bank` then `judo.comparator.compare(path, bank)` for every part
  (nothing written): the floor;
- cli: `judo.inspect_cli.main(["--folder", ...])` in this process (engine from configs/tiny.yaml,
  results.jsonl fsynced per part, overlay PNGs, CSV/JSON/HTML exports, one printed line per part). The
  interpreter's start and imports are NOT in this figure (they are paid once per process; torch is
  imported by the config loader); a separate `judo inspect --folder` subprocess run is printed too,
  start and imports included, for information (no target);
- app: the Batch tab served by its own process (judo.app.batch.batch_demo, started fresh per round so
  its caches are cold too; its start is not timed), driven by gradio_client: upload of every part,
  queue, streamed updates (progress and table), exports, download copies, until predict() returns with the
  client's downloads of every file it was sent. The tray is uploaded as one zip (what a lab uploads);
  uploading the parts as --parts separate files costs gradio_client and Gradio ~0.1 s a file on this
  machine whatever the app does (a bare Gradio app with one gr.File measures the same), so that run is
  printed for information, with no target.

Targets: app >= 85% of the CLI's parts/s and CLI >= 85% of the loop's (within 15%). Each round runs the
three back to back (order rotated, so a load burst on a shared machine hits them alike); figures are
medians over rounds. Exits 1 naming every target missed.

    .venv/bin/python bench/batch.py [--parts 100] [--size 448] [--golden 4] [--rounds 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TARGET = 0.85


def cold() -> None:
    """Forget every prepared normal, texture tree, outlier check and calibration of this process."""
    from judo.comparator import bank, calibration

    bank._cache.clear()
    bank._trees.clear()
    bank._outlier_memory.clear()
    calibration._memory.clear()


def run_loop(parts: list[Path], golden: list[Path]) -> float:
    from judo.comparator import build_bank, compare

    cold()
    t0 = time.perf_counter()
    bank = build_bank(golden)
    for part in parts:
        compare(part, bank)
    return time.perf_counter() - t0


def cli_args(folder: Path, golden: list[Path], out: Path) -> list[str]:
    config = REPO / "configs" / "tiny.yaml"
    return [
        "--folder",
        str(folder),
        *map(str, golden),
        "--out",
        str(out),
        "--engine",
        "comparator",
        "--config",
        str(config),
    ]


def run_cli(folder: Path, golden: list[Path], out: Path) -> float:
    from judo.inspect_cli import main

    cold()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        status = main(cli_args(folder, golden, out))
    elapsed = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"judo inspect --folder exited {status}")
    return elapsed


def run_cli_subprocess(folder: Path, golden: list[Path], out: Path) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "judo.cli", "inspect", *cli_args(folder, golden, out)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if done.returncode != 0:
        raise SystemExit(f"judo inspect --folder exited {done.returncode}: {done.stderr[-2000:]}")
    return time.perf_counter() - t0


@contextlib.contextmanager
def server(golden: list[Path], records: Path, log: Path):
    """The Batch tab in its own process; yields its URL."""
    from tests.app_server import free_port

    port = free_port()
    command = [
        sys.executable,
        __file__,
        "--serve",
        str(records),
        "--port",
        str(port),
        "--golden-files",
        *map(str, golden),
    ]
    with open(log, "w") as err:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    try:
        for line in proc.stdout:
            if line.strip() == "READY":
                break
        else:
            raise SystemExit("the batch server did not start:\n" + log.read_text()[-3000:])
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_app(uploads: list[Path], parts: list[Path], golden: list[Path], work: Path, round_: str) -> float:
    from gradio_client import Client, handle_file

    with server(golden, work / f"records-{round_}", work / f"server-{round_}.log") as url:
        client = Client(url, verbose=False)
        t0 = time.perf_counter()
        _, table, downloads = client.predict(
            parts=[handle_file(str(p)) for p in uploads], product="bench", api_name="/batch"
        )
        elapsed = time.perf_counter() - t0
    if len(table["data"]) != len(parts) or len(downloads) != 3:
        raise SystemExit(f"the app returned {len(table['data'])} rows and {len(downloads)} downloads")
    return elapsed


def serve(records: Path, port: int, golden: list[Path]) -> None:
    from judo.app.batch import batch_demo
    from judo.engines.comparator import ComparatorEngine

    demo = batch_demo([ComparatorEngine()], {"bench": golden}, records)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    print("READY", flush=True)
    while True:
        time.sleep(3600)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", type=int, default=100)
    ap.add_argument("--size", type=int, default=448)
    ap.add_argument("--golden", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--no-extras",
        action="store_true",
        help="skip the informational runs (CLI subprocess, app with separate files)",
    )
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--golden-files", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.golden_files)
        return 0

    from judo.batch.tray import make_tray
    from judo.engines import load_config

    work = Path(tempfile.mkdtemp(prefix="judo-bench-batch-"))
    try:
        tray = make_tray(work / "tray", args.parts, golden=args.golden, size=args.size, seed=args.seed)
        folder = tray.parts[0].parent
        archive = work / "tray.zip"  # what a lab uploads: one archive (stored, the PNGs are compressed)
        with zipfile.ZipFile(archive, "w") as zf:
            for part in tray.parts:
                zf.write(part, part.name)
        load_config(REPO / "configs" / "tiny.yaml")  # the config loader's imports (torch), once, not timed
        times: dict[str, list[float]] = {"loop": [], "cli": [], "app": []}
        for r in range(args.rounds):
            order = ["loop", "cli", "app"]
            order = order[r % 3 :] + order[: r % 3]
            for path in order:
                if path == "loop":
                    times[path].append(run_loop(tray.parts, tray.golden))
                elif path == "cli":
                    times[path].append(run_cli(folder, tray.golden, work / f"cli-{r}"))
                else:
                    times[path].append(run_app([archive], tray.parts, tray.golden, work, str(r)))
                print(f"round {r + 1}: {path:4s} {times[path][-1]:7.2f} s", flush=True)
        sub = files = None
        if not args.no_extras:
            sub = run_cli_subprocess(folder, tray.golden, work / "cli-sub")
            files = run_app(tray.parts, tray.parts, tray.golden, work, "files")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n = args.parts
    rate = {k: n / statistics.median(v) for k, v in times.items()}
    print(
        f"\n{n} parts at {args.size} px, bank of {args.golden}, comparator, {args.rounds} round(s), "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    for k, label in (
        ("loop", "compare() loop"),
        ("cli", "judo inspect --folder (in-process main)"),
        ("app", "app /batch (gradio_client)"),
    ):
        print(f"  {label:42s} {rate[k]:6.2f} parts/s  ({statistics.median(times[k]):.2f} s)")
    if sub is not None:
        print(
            f"  {'judo inspect --folder (subprocess, info)':42s} {n / sub:6.2f} parts/s  ({sub:.2f} s, start and imports included)"
        )
    if files is not None:
        print(
            f"  {'app /batch, parts as separate files (info)':42s} {n / files:6.2f} parts/s  ({files:.2f} s)"
        )
    missed = []
    for a, b in (("app", "cli"), ("cli", "loop")):
        ratio = rate[a] / rate[b]
        ok = ratio >= TARGET
        print(f"  {a}/{b}: {ratio:.3f} (target >= {TARGET:.2f}) {'ok' if ok else 'MISSED'}")
        if not ok:
            missed.append(f"{a} at {ratio:.0%} of {b}")
    if missed:
        print("targets missed: " + "; ".join(missed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
