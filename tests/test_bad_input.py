"""Bad input through the served app: one clear sentence, never a traceback, and the app keeps serving."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from judo.inputs import OptionsError, parse_options
from tests.app_server import EXAMPLES, inspect_args, serve_tiny_app

pytestmark = pytest.mark.slow

QUERY = EXAMPLES / "bottle" / "bottle-contamination-000.png"
TEMPLATE = EXAMPLES / "templates" / "bottle" / "00.png"


@pytest.fixture(scope="module")
def client(tiny_model_dir):
    from gradio_client import Client

    with serve_tiny_app(tiny_model_dir) as served:
        yield Client(served.url, verbose=False)


def _inspect(client, query: Path | str, template: Path | str = TEMPLATE, **kw):
    from gradio_client import handle_file

    job = client.submit(
        *inspect_args(handle_file(str(query)), handle_file(str(template)), **kw), api_name="/inspect"
    )
    for _ in job:
        pass
    return job.outputs()[-1]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _bomb_png(path: Path, side: int = 100_000) -> Path:
    """A tiny file whose header claims side x side pixels (30 GB decoded)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _dot(path: Path) -> Path:
    Image.new("RGB", (1, 1)).save(path)
    return path


@pytest.mark.parametrize(
    "make, phrase",
    [
        (lambda d: _write(d / "notes.png", b"not an image at all"), "not an image"),
        (lambda d: _write(d / "cut.png", QUERY.read_bytes()[:600]), "truncated"),
        (lambda d: _dot(d / "dot.png"), "at least 8x8"),
        (lambda d: _bomb_png(d / "bomb.png"), "pixels"),
    ],
    ids=["not-an-image", "truncated", "1x1", "decompression-bomb"],
)
def test_unusable_query_gets_a_clear_message(client, tmp_path, make, phrase):
    final = _inspect(client, make(tmp_path), engine="comparator")
    status, result = final[4], final[5]
    assert "Cannot inspect" in status and "query image cannot be used" in status
    assert phrase in status.lower(), status
    assert result["error"] and "Traceback" not in status and "/tmp/" not in status


def test_upload_over_the_size_cap_is_refused(client, tmp_path):
    from gradio_client import handle_file

    big = tmp_path / "huge.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * (26 * 1024 * 1024))
    with pytest.raises(Exception, match="(?i)file size|too large|exceed"):
        job = client.submit(
            *inspect_args(handle_file(str(big)), handle_file(str(TEMPLATE)), engine="comparator"),
            api_name="/inspect",
        )
        job.result()


def _variants(tmp_path: Path) -> dict[str, Path]:
    rgb = Image.open(QUERY).convert("RGB")
    out = {}
    rgb.convert("L").save(out.setdefault("grayscale", tmp_path / "gray.png"))
    rgba = rgb.convert("RGBA")
    rgba.putalpha(200)
    rgba.save(out.setdefault("rgba", tmp_path / "rgba.png"))
    arr16 = np.asarray(rgb.convert("L")).astype(np.uint16) * 257
    Image.fromarray(arr16).save(out.setdefault("16-bit", tmp_path / "gray16.png"))
    # stored rotated 90 degrees with EXIF orientation 6 ("rotate 90 CW to view"): upright after transpose
    rotated = rgb.resize((256, 192)).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated.save(out.setdefault("exif-rotated", tmp_path / "exif.jpg"), exif=exif, quality=92)
    return out


@pytest.mark.parametrize("kind", ["grayscale", "rgba", "16-bit", "exif-rotated"])
def test_unusual_but_valid_images_are_inspected(client, tmp_path, kind):
    path = _variants(tmp_path)[kind]
    final = _inspect(client, path, engine="comparator")
    result = final[5]
    assert result["done"] and result["error"] is None, final[4]
    with Image.open(final[0]) as overlay:
        assert overlay.mode == "RGB"
        if kind == "exif-rotated":
            assert overlay.size == (256, 192)  # shown upright, as the photographer saw it


def test_template_of_another_size_is_inspected_with_a_note(client, tmp_path):
    small = tmp_path / "small_template.png"
    Image.open(TEMPLATE).resize((180, 120)).save(small)
    final = _inspect(client, QUERY, small, engine="comparator")
    assert final[5]["done"] and final[5]["error"] is None
    assert "different aspect ratios" in final[4]
    assert "for the model" not in final[4], (
        "the comparator registers the images itself: no model resizes them"
    )
    final = _inspect(client, QUERY, small, engine="tiny")
    assert (
        final[5]["done"] and "differ in size" in final[4] and "resized to 448x448 for the model" in final[4]
    )


def test_empty_question_is_refused(client):
    final = _inspect(client, QUERY, question="   ")
    assert "question is empty" in final[4]


def test_bad_options_are_refused(client):
    final = _inspect(client, QUERY, options="A. Yes.\nA. No.")
    assert "appears twice" in final[4]


def test_missing_template_says_what_to_do(client):
    from gradio_client import handle_file

    job = client.submit(*inspect_args(handle_file(str(QUERY)), None), api_name="/inspect")
    for _ in job:
        pass
    assert "No template image" in job.outputs()[-1][4]


def test_endless_output_is_cut_at_the_token_budget(client):
    final = _inspect(client, QUERY, max_new_tokens=16)
    assert final[5]["done"]
    # the tiny random model writes noise: 16 tokens never close the answer, so the output is cut there
    assert "The output was cut at the 16-token limit." in final[4]
    assert "The output was cut at the 16-token limit." in final[5]["warnings"]
    assert " 16 tokens " in final[4]  # the count of generated tokens, not of the re-tokenised text


def test_app_keeps_serving_after_bad_input(client, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    _inspect(client, bad)
    final = _inspect(client, QUERY, engine="comparator")
    assert final[5]["done"] and final[5]["error"] is None and final[5]["cells"]


def test_option_parsing_rules():
    assert parse_options("A. Yes.\nB. No.") == {"A": "Yes.", "B": "No."}
    assert parse_options("Scratch\nHole\nStain") == {"A": "Scratch", "B": "Hole", "C": "Stain"}
    assert parse_options("  \n ") is None
    with pytest.raises(OptionsError, match="single option"):
        parse_options("A. Yes.")
    with pytest.raises(OptionsError, match="A-E"):
        parse_options("A. a\nF. f")
    with pytest.raises(OptionsError, match="at most"):
        parse_options("\n".join(f"option {i}" for i in range(6)))


def test_image_guard_messages_directly():
    """The same guard without the server: bytes that lie about their size never get decoded."""
    from judo.images import ImageInputError, load_image

    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, format="PNG")
    with pytest.raises(ImageInputError):
        load_image(buf.getvalue())


def test_question_and_option_limits_hold_for_every_caller():
    """The app, `judo inspect` and `judo eval` all build an InspectionRequest: the limits live there."""
    from judo.engines import InspectionRequest
    from judo.inputs import MAX_OPTION_CHARS, MAX_QUESTION_CHARS, InputError

    picture = Image.new("RGB", (32, 32))
    with pytest.raises(InputError, match="question is too long"):
        InspectionRequest(picture, picture, "x" * (MAX_QUESTION_CHARS + 1))
    with pytest.raises(OptionsError, match="Option B is too long"):
        InspectionRequest(picture, picture, "Defect?", {"A": "Yes.", "B": "n" * (MAX_OPTION_CHARS + 1)})
    with pytest.raises(OptionsError, match="at most 5"):
        InspectionRequest(picture, picture, "Which?", {k: k for k in "ABCDEF"})
    with pytest.raises(OptionsError, match="letters A-E"):
        InspectionRequest(picture, picture, "Which?", {"A": "x", "Z": "y"})
    assert InspectionRequest(picture, picture, " Q? ", {"b": " No. ", "a": "Yes."}).options == {
        "A": "Yes.",
        "B": "No.",
    }
