"""What an attacker on the network gets from the served app: sign-in guesses per second and upload bytes
accepted in a burst, with the app's limits off (Gradio's own behaviour: the baseline) and on (defaults).

Both runs serve the same app on 127.0.0.1 in this process (configs/tiny.yaml, comparator engine, a login
set); "off" raises every limit of `judo.app.guard` out of reach. The guesser posts wrong passwords to
Gradio's ``/login`` as fast as it can for ``--seconds`` s; the uploader posts distinct 20 MB files to
``/gradio_api/upload`` for 10 s (at most ``--max-uploads`` of them, so the baseline does not fill the
disk). Guesses per second count the attempts whose password was actually checked (400), not the
refused ones (429).

Targets (limits on, defaults): guesses/s at most the configured per-client rate plus one window's
burst over the run; accepted upload bytes at most the per-client upload quota; Gradio's folder under
its cap.

    .venv/bin/python bench/abuse.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

OFF = {
    "JUDO_LIMITS_LOGIN_PER_CLIENT": "1000000 per second",
    "JUDO_LIMITS_LOGIN_PER_USER": "1000000 per second",
    "JUDO_LIMITS_UPLOAD_PER_CLIENT": "1tb per second",
    "JUDO_LIMITS_UPLOAD_FOLDER_CAP": "1tb",
}
UPLOAD_BYTES = 20 * 1024**2


@contextlib.contextmanager
def serve(env: dict[str, str], folder: Path):
    from judo.app.server import create_app
    from judo.engines import load_config
    from tests.app_server import free_port

    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    accounts = folder.parent / "accounts"
    accounts.write_text("inspector:the-right-password\n", encoding="utf-8")
    config = load_config(
        REPO / "configs" / "tiny.yaml", env={"JUDO_ENGINES": "comparator", "JUDO_AUTH": str(accounts), **env}
    )
    demo, kwargs = create_app(config)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **kwargs)
    try:
        yield f"http://127.0.0.1:{port}/", config
    finally:
        demo.close()


def guesses_per_s(url: str, seconds: float) -> tuple[float, int, int]:
    import httpx

    checked = refused = 0
    with httpx.Client() as client:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            r = client.post(url + "login", data={"username": "inspector", "password": f"guess{checked}"})
            if r.status_code == 400:
                checked += 1
            elif r.status_code == 429:
                refused += 1
            else:
                raise SystemExit(f"unexpected answer to a wrong password: {r.status_code}")
        elapsed = time.perf_counter() - t0
    return checked / elapsed, checked, refused


def upload_burst(url: str, seconds: float, max_uploads: int) -> tuple[int, int, float]:
    """(bytes accepted, uploads refused, seconds) for distinct 20 MB uploads during ``seconds``.

    Signed in first (with a login set, Gradio's upload route wants one), from another loopback address than
    the guesser's, so the burst measures the upload quota, not the sign-in throttle."""
    import httpx

    accepted = refused = sent = 0
    with httpx.Client(timeout=60, transport=httpx.HTTPTransport(local_address="127.0.0.2")) as client:
        r = client.post(url + "login", data={"username": "inspector", "password": "the-right-password"})
        if r.status_code != 200:
            raise SystemExit(f"the right password was not accepted ({r.status_code}): {r.text[:200]}")
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds and sent < max_uploads:
            data = os.urandom(32) + b"\0" * (UPLOAD_BYTES - 32)
            r = client.post(url + "gradio_api/upload", files={"files": (f"u{sent}.png", data, "image/png")})
            sent += 1
            if r.status_code == 200:
                accepted += UPLOAD_BYTES
            elif r.status_code in {429, 507}:
                refused += 1
            else:
                raise SystemExit(f"unexpected answer to an upload: {r.status_code} {r.text[:200]}")
        return accepted, refused, time.perf_counter() - t0


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the guessing run")
    parser.add_argument("--burst-seconds", type=float, default=10.0)
    parser.add_argument("--max-uploads", type=int, default=25)
    args = parser.parse_args(argv)
    from judo.engines.config import parse_byte_rate, parse_rate_text

    figures = {}
    with tempfile.TemporaryDirectory(prefix="judo-abuse-") as tmp:
        for name, env in (("off", OFF), ("on", {})):
            folder = Path(tmp) / name / "gradio"
            folder.mkdir(parents=True)
            with serve(env, folder) as (url, config):
                rate, checked, refused = guesses_per_s(url, args.seconds)
                accepted, up_refused, burst_s = upload_burst(url, args.burst_seconds, args.max_uploads)
                figures[name] = (
                    rate,
                    checked,
                    refused,
                    accepted,
                    up_refused,
                    burst_s,
                    folder_bytes(folder),
                    config.limits,
                )
    print(
        f"abuse: wrong passwords for {args.seconds:g} s, distinct 20 MB uploads for {args.burst_seconds:g} s "
        f"(at most {args.max_uploads}); 127.0.0.1; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    for name, (rate, checked, refused, accepted, up_refused, burst_s, used, _lim) in figures.items():
        label = "limits off (Gradio alone)" if name == "off" else "limits on (defaults)"
        print(
            f"  {label:26s} login: {rate:7.1f} guesses/s checked ({checked} checked, {refused} refused); "
            f"upload: {accepted / 2**20:6.0f} MB accepted in {burst_s:.1f} s ({up_refused} refused), "
            f"folder {used / 2**20:.0f} MB"
        )
    rate, checked, _r, accepted, _u, _s, used, limits = figures["on"]
    per_client = parse_rate_text(limits.login_per_client)
    allowed_checks = per_client.amount * (1 + args.seconds / per_client.get_expiry())
    quota, _item = parse_byte_rate(limits.upload_per_client)
    off_rate = figures["off"][0]
    print(
        f"  ratio: guesses/s on / off = {rate / off_rate if off_rate else 0:.4f}; "
        f"upload bytes on / off = {accepted / figures['off'][3] if figures['off'][3] else 0:.3f}"
    )
    missed = []
    if checked > allowed_checks:
        missed.append(
            f"login: {checked} guesses checked, more than {allowed_checks:.0f} ({limits.login_per_client})"
        )
    if accepted > quota:
        missed.append(f"upload: {accepted} bytes accepted, more than the quota ({limits.upload_per_client})")
    if used > limits.upload_folder_cap:
        missed.append("upload folder over its cap")
    for m in missed:
        print(f"TARGET MISSED: {m}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
