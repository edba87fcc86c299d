"""The served app probed as an attacker and an operator would, on 127.0.0.1: every bad-input class gets one
clean sentence, sign-ins are throttled, uploads are bounded, records go only to the session that made them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.app_server import EXAMPLES, inspect_args, serve_tiny_app

pytestmark = pytest.mark.slow

QUERY = EXAMPLES / "bottle" / "bottle-contamination-000.png"
TEMPLATE = EXAMPLES / "templates" / "bottle" / "00.png"
#: A second client address on the loopback (the server still listens on 127.0.0.1 only).
OTHER_CLIENT = "127.0.0.2"


def _inspect(client, *args, api_name="/inspect"):
    job = client.submit(*args, api_name=api_name)
    for _ in job:
        pass
    outputs = job.outputs()
    return outputs[-1] if outputs else job.result()  # no output: result() raises the app's error


# ---------------------------------------------------------------------------------- bad-input probes
def _probe_files(tmp: Path) -> dict[str, Path]:
    (tmp / "notes.png").write_bytes(b"not an image at all")
    (tmp / "cut.png").write_bytes(QUERY.read_bytes()[:600])
    Image.new("RGB", (1, 1)).save(tmp / "dot.png")
    mask_dir = tmp / "server" / "side" / "folder"
    mask_dir.mkdir(parents=True)
    (mask_dir / "mask.png").write_bytes(b"GIF89a not really")
    return {
        "bad": tmp / "notes.png",
        "cut": tmp / "cut.png",
        "dot": tmp / "dot.png",
        "mask": mask_dir / "mask.png",
    }


#: (class, keyword overrides of /inspect, phrase the one-sentence answer holds)
PROBES = [
    ("query-not-an-image", {"query": "bad"}, "not an image"),
    ("query-truncated", {"query": "cut"}, "truncated"),
    ("query-1x1", {"query": "dot"}, "at least 8x8"),
    ("no-template", {"template": None}, "No template image"),
    ("empty-question", {"question": "   "}, "question is empty"),
    ("question-1MB", {"question": "Is it? " * 150_000}, "question is too long"),
    ("options-1MB", {"options": "A. " + "x" * 1_000_000 + "\nB. No."}, "Option A is too long"),
    ("option-too-long", {"options": "A. " + "x" * 500 + "\nB. No."}, "Option A is too long"),
    ("six-options", {"options": "\n".join(f"{c}. o" for c in "ABCDEF")}, "at most 5"),
    ("duplicate-letter", {"options": "A. Yes.\nA. No."}, "appears twice"),
    ("unknown-engine", {"engine": "nope"}, "not in the list of choices"),
    ("max-new-tokens-abc", {"max_new_tokens": "abc"}, "Max new tokens must be a number"),
    ("max-new-tokens-huge", {"max_new_tokens": 10**9}, "must be between 1 and 4096"),
    ("mask-not-an-image", {"mask": "mask", "engine": "comparator"}, "mask was ignored"),
]


@pytest.fixture(scope="module")
def served(tiny_model_dir):
    with serve_tiny_app(tiny_model_dir) as s:
        yield s


def test_every_bad_input_class_gets_one_clean_sentence(served, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(served.url, verbose=False)
    files = _probe_files(tmp_path)
    clean = []
    for name, overrides, phrase in PROBES:
        kw = dict(overrides)
        query = handle_file(str(files[kw.pop("query")] if "query" in kw else QUERY))
        template = kw.pop("template", handle_file(str(TEMPLATE)))
        if "mask" in kw:
            kw["mask"] = handle_file(str(files[kw["mask"]]))
        t0 = time.perf_counter()
        try:
            status = _inspect(client, *inspect_args(query, template, **kw))[4]
        except AppError as err:  # refused by Gradio's own component check (e.g. a value not offered)
            status = str(err)
        ok = (
            phrase in status
            and "Traceback" not in status
            and str(tmp_path) not in status
            and "/tmp/" not in status
            and time.perf_counter() - t0 < 30
        )
        assert ok, f"{name}: {status!r}"
        clean.append(name)
    print(f"\nbad-input classes tried: {len(PROBES)}, clean one-sentence errors: {len(clean)}")
    final = _inspect(
        client, *inspect_args(handle_file(str(QUERY)), handle_file(str(TEMPLATE)), engine="comparator")
    )
    assert final[5]["done"] and final[5]["error"] is None  # still serving


def test_records_and_overlays_go_only_to_their_session(served):
    from gradio_client import Client, handle_file

    owner = Client(served.url, verbose=False, download_files=False)
    final = _inspect(
        owner, *inspect_args(handle_file(str(QUERY)), handle_file(str(TEMPLATE)), engine="comparator")
    )
    urls = [
        final[i].url if hasattr(final[i], "url") else final[i]["url"] for i in (0, 6, 7)
    ]  # overlay, record, png
    assert all(urls)
    for url in urls:
        assert httpx.get(url, cookies=owner.cookies).status_code == 200
        assert httpx.get(url).status_code == 404  # no cookie: another browser
        stranger = Client(served.url, verbose=False, download_files=False)
        assert httpx.get(url, cookies=stranger.cookies).status_code == 404
    assert httpx.get(urls[1], cookies=owner.cookies).json()["engine"]["id"] == "comparator"


# -------------------------------------------------------------------------------------------- login
def test_login_is_throttled_per_client_and_user_name(tiny_model_dir, tmp_path, caplog):
    accounts = tmp_path / "accounts"
    accounts.write_text("alice:right-horse-battery\nbob:bobs-own-secret\n", encoding="utf-8")
    env = {
        "JUDO_ENGINES": "comparator",
        "JUDO_AUTH": str(accounts),
        "JUDO_LIMITS_LOGIN_PER_CLIENT": "25 per 2 seconds",
        "JUDO_LIMITS_LOGIN_PER_USER": "25 per 2 seconds",
    }
    caplog.set_level("WARNING", logger="judo.app.guard")
    with serve_tiny_app(tiny_model_dir, **env) as s, httpx.Client() as attacker:
        login = s.url + "login"
        checked, refused, t0 = 0, 0, time.perf_counter()
        while checked < 50:
            r = attacker.post(login, data={"username": "alice", "password": f"guess-{checked}"})
            if r.status_code == 429:
                refused += 1
                assert (
                    "Too many sign-in attempts" in r.json()["detail"] and int(r.headers["retry-after"]) >= 1
                )
                time.sleep(0.05)
                continue
            assert r.status_code == 400
            checked += 1
        elapsed = time.perf_counter() - t0
        print(f"\n50 wrong guesses took {elapsed:.2f} s ({50 / elapsed:.1f} guesses/s), {refused} refused")
        assert elapsed >= 2.0 and refused > 0
        # Locked out: even the right password is not checked now ...
        assert (
            attacker.post(login, data={"username": "alice", "password": "right-horse-battery"}).status_code
            == 429
        )
        # ... while another user, from another address, signs in at once.
        with httpx.Client(transport=httpx.HTTPTransport(local_address=OTHER_CLIENT)) as bob:
            r = bob.post(login, data={"username": "bob", "password": "bobs-own-secret"})
            assert r.status_code == 200 and r.json()["success"]
        time.sleep(2.1)
        r = attacker.post(login, data={"username": "alice", "password": "right-horse-battery"})
        assert r.status_code == 200 and r.json()["success"]
    failed = [rec for rec in caplog.records if "failed sign-in for user 'alice'" in rec.getMessage()]
    assert len(failed) >= 50


# ------------------------------------------------------------------------------------------ uploads
def _upload(url: str, size: int, seed: int, client: httpx.Client | None = None) -> httpx.Response:
    data = os.urandom(16) + seed.to_bytes(8, "big") + b"\0" * (size - 24)
    post = client.post if client is not None else httpx.post
    return post(url + "gradio_api/upload", files={"files": (f"f{seed}.png", data, "image/png")}, timeout=60)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.fixture()
def upload_folder(tmp_path, monkeypatch):
    folder = tmp_path / "gradio-cache"
    folder.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


def test_upload_rate_per_client_is_bounded(tiny_model_dir, upload_folder):
    env = {"JUDO_ENGINES": "comparator", "JUDO_LIMITS_UPLOAD_PER_CLIENT": "6mb per 30 seconds"}
    with serve_tiny_app(tiny_model_dir, **env) as s:
        codes = [_upload(s.url, 2_000_000, i).status_code for i in range(5)]
        assert codes == [200, 200, 200, 429, 429], codes
        refused = _upload(s.url, 2_000_000, 9)
        assert "Upload quota reached" in refused.json()["detail"]
        with httpx.Client(transport=httpx.HTTPTransport(local_address=OTHER_CLIENT)) as other:
            assert (
                _upload(s.url, 2_000_000, 10, other).status_code == 200
            )  # another address has its own quota


def test_upload_folder_stays_under_its_cap(tiny_model_dir, upload_folder):
    cap = 8 * 1024**2  # the app's own cached examples and gallery (~1.5 MB) count too
    env = {
        "JUDO_ENGINES": "comparator",
        "JUDO_LIMITS_UPLOAD_FOLDER_CAP": "8mb",
        "JUDO_LIMITS_UPLOAD_PER_CLIENT": "1gb per minute",
    }
    with serve_tiny_app(tiny_model_dir, **env) as s:
        codes = []
        for i in range(6):
            codes.append(_upload(s.url, 2_000_000, i).status_code)
            assert _folder_bytes(upload_folder) <= cap
        assert codes[:2] == [200, 200] and codes[-1] == 507 and set(codes) == {200, 507}, codes
        assert "upload space is full" in _upload(s.url, 2_000_000, 7).json()["detail"]
        assert _folder_bytes(upload_folder) <= cap


def test_oldest_uploads_make_room_once_old_enough(tiny_model_dir, upload_folder):
    cap = 6 * 1024**2
    env = {
        "JUDO_ENGINES": "comparator",
        "JUDO_LIMITS_UPLOAD_FOLDER_CAP": "6mb",
        "JUDO_LIMITS_UPLOAD_PER_CLIENT": "1gb per minute",
        "JUDO_LIMITS_UPLOAD_KEEP_S": "0",
    }
    with serve_tiny_app(tiny_model_dir, **env) as s:
        httpx.get(s.url)  # a first visit: what the app cached for its page is its own, never removed
        own = {p.name for p in upload_folder.iterdir()}
        for i in range(6):
            assert _upload(s.url, 2_000_000, i).status_code == 200
            time.sleep(0.05)  # let Gradio move the file into its cache folder
            assert _folder_bytes(upload_folder) <= cap
        kept = sorted(p.name for p in upload_folder.rglob("f*.png"))
        assert "f5.png" in kept and "f0.png" not in kept  # the oldest went first
        assert own <= {p.name for p in upload_folder.iterdir()}  # the examples stayed


def test_upload_without_a_size_is_refused(served):
    def body():
        yield b'--x\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n\r\n'
        yield b"\0" * 1000
        yield b"\r\n--x--\r\n"

    r = httpx.post(
        served.url + "gradio_api/upload",
        content=body(),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert r.status_code == 411 and "must state its size" in r.json()["detail"]


# ----------------------------------------------------------------------------------- records folder
def test_unwritable_records_folder_is_said_once_and_results_still_come(tiny_model_dir, tmp_path, caplog):
    from gradio_client import Client, handle_file

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    caplog.set_level("WARNING", logger="judo.app")
    with serve_tiny_app(tiny_model_dir, JUDO_RECORDS_DIR=str(blocker / "records")) as s:
        client = Client(s.url, verbose=False)
        for _ in range(2):
            final = _inspect(
                client,
                *inspect_args(handle_file(str(QUERY)), handle_file(str(TEMPLATE)), engine="comparator"),
            )
            assert final[5]["done"] and final[5]["error"] is None and final[5]["cells"]
            assert final[6] is None and "could not be saved" in final[4] and str(tmp_path) not in final[4]
    said = [
        r for r in caplog.records if "records folder" in r.getMessage() and "not writable" in r.getMessage()
    ]
    assert len(said) == 1


def test_with_a_login_records_go_to_their_user(tiny_model_dir, tmp_path):
    from gradio_client import Client, handle_file

    accounts = tmp_path / "accounts"
    accounts.write_text("alice:alices-secret\nbob:bobs-secret\n", encoding="utf-8")
    with serve_tiny_app(tiny_model_dir, JUDO_ENGINES="comparator", JUDO_AUTH=str(accounts)) as s:
        alice = Client(s.url, auth=("alice", "alices-secret"), verbose=False, download_files=False)
        final = _inspect(
            alice, *inspect_args(handle_file(str(QUERY)), handle_file(str(TEMPLATE)), engine="comparator")
        )
        record = final[6].url if hasattr(final[6], "url") else final[6]["url"]
        again = Client(s.url, auth=("alice", "alices-secret"), verbose=False, download_files=False)
        bob = Client(s.url, auth=("bob", "bobs-secret"), verbose=False, download_files=False)
        assert httpx.get(record, cookies=again.cookies).status_code == 200  # the same user, another session
        assert httpx.get(record, cookies=bob.cookies).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "..%2f..%2f..%2fetc%2fpasswd",
        "%2e%2e/%2e%2e/etc/passwd",
        "/proc/self/environ",
        "configs/app.yaml",
        "../../../../etc/passwd",
    ],
)
def test_file_route_escapes_are_refused(served, path):
    r = httpx.get(served.url + "gradio_api/file=" + path)
    assert r.status_code in {403, 404} and "root:" not in r.text
