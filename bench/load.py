"""A bounded load test of the served app: many clients at once, a small queue, nothing lost.

The app runs as deployed, in its own process (`python app.py`, configs/tiny.yaml with a tiny checkpoint
built here, queue ``max_size`` 16, one inspection at a time), on 127.0.0.1 only. ``--clients`` clients
(default 20) each send ``--requests`` inspections (default 5) back to back through `gradio_client`,
all at once, so more requests wait than the queue holds. Every request must end one of two ways:
served (a final result with the answer) or refused with Gradio's queue-full message; any other outcome
(an error, a hang past ``--timeout``, a missing reply) counts as lost. The server's resident memory
(RSS) is read after one warm-up request and after each of ``--rounds`` such bursts (default 2): the
first burst grows it once (worker threads, allocator arenas, Gradio's caches), so a leak shows as
growth that goes on in the later bursts.

Targets: 0 lost; every refusal is the queue-full message; RSS growth of the last burst under
``--rss-mb`` MB (default 50).

    .venv/bin/python bench/load.py [--clients 20] [--requests 5] [--queue 16] [--tokens 16]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent import futures
from itertools import pairwise
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

QUERY = REPO / "examples" / "bottle" / "bottle-contamination-000.png"
TEMPLATE = REPO / "examples" / "templates" / "bottle" / "00.png"
QUEUE_FULL = "queue is full"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(checkpoint: Path, port: int, queue: int, work: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "JUDO_CONFIG": str(REPO / "configs" / "tiny.yaml"),
        "JUDO_ENGINES": "tiny",
        "JUDO_ENGINE_TINY_CHECKPOINT": str(checkpoint),
        "JUDO_QUEUE_SIZE": str(queue),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_TEMP_DIR": str(work / "gradio"),
        "JUDO_RECORDS_DIR": str(work / "records"),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO),
    }
    with open(work / "server.log", "w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with code {proc.returncode} before serving")
        try:
            if httpx.get(url + "config", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the app did not start serving in time")


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def one_client(url: str, n: int, tokens: int, timeout: float) -> list[str]:
    """Send n inspections one after another; the outcome of each: served / refused / lost:<why>."""
    from gradio_client import Client, handle_file

    from tests.app_server import inspect_args

    client = Client(url, verbose=False, download_files=False)
    outcomes = []
    for _ in range(n):
        job = client.submit(
            *inspect_args(handle_file(str(QUERY)), handle_file(str(TEMPLATE)), max_new_tokens=tokens),
            api_name="/inspect",
        )
        try:
            final = job.result(timeout=timeout)
        except Exception as err:  # noqa: BLE001 - classified below
            text = str(err).lower()
            outcomes.append(
                "refused" if QUEUE_FULL in text else f"lost:{type(err).__name__}: {str(err)[:80]}"
            )
            continue
        result = final[5] if isinstance(final, (list, tuple)) and len(final) > 5 else None
        ok = isinstance(result, dict) and result.get("done") and not result.get("error")
        outcomes.append("served" if ok else f"lost:bad final {str(result)[:80]}")
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--queue", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rss-mb", type=float, default=50.0)
    args = parser.parse_args(argv)

    from judo.synthetic.tiny_model import build_tiny

    with tempfile.TemporaryDirectory(prefix="judo-load-") as tmp:
        work = Path(tmp)
        checkpoint = build_tiny(work / "tiny", seed=0)
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        proc = start_server(checkpoint, port, args.queue, work)
        try:
            wait_ready(url, proc)
            warm = one_client(url, 1, args.tokens, args.timeout)
            rss = [rss_mb(proc.pid)]
            runs, elapsed = [], 0.0
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                with futures.ThreadPoolExecutor(args.clients) as pool:
                    runs += list(
                        pool.map(
                            lambda _: one_client(url, args.requests, args.tokens, args.timeout),
                            range(args.clients),
                        )
                    )
                elapsed += time.perf_counter() - t0
                time.sleep(1.0)
                rss.append(rss_mb(proc.pid))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    outcomes = Counter(o if not o.startswith("lost") else "lost" for run in runs for o in run)
    lost = [o for run in runs for o in run if o.startswith("lost")]
    total = args.clients * args.requests * args.rounds
    growth = rss[-1] - rss[-2]
    print(
        f"load: {args.rounds} x ({args.clients} clients x {args.requests} requests) = {total}, queue max_size "
        f"{args.queue}, concurrency 1, tiny model, {args.tokens} new tokens; warm-up {warm[0]}"
    )
    print(
        f"  served {outcomes['served']}, refused (queue full) {outcomes['refused']}, lost {outcomes['lost']}"
        f" in {elapsed:.1f} s ({outcomes['served'] / elapsed:.2f} served/s)"
    )
    steps = ", ".join(f"{b - a:+.1f}" for a, b in pairwise(rss))
    print(
        f"  server RSS {rss[0]:.0f} MB after warm-up, {rss[-1]:.0f} MB at the end; growth per burst {steps} MB"
    )
    print(f"  load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (shared cores)")
    missed = []
    if lost or outcomes["served"] + outcomes["refused"] != total:
        missed.append(f"none lost (got {len(lost)} lost: {lost[:3]})")
    if growth > args.rss_mb:
        missed.append(f"RSS growth of the last burst under {args.rss_mb:g} MB")
    if outcomes["served"] == 0:
        missed.append("at least one request served")
    for m in missed:
        print(f"TARGET MISSED: {m}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
