"""judo.images: every bad input is built on the fly and must end as one user-facing ImageInputError."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from judo import images
from judo.images import ImageInputError, load_image, load_mask, to_model_size


def _encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _photo(w: int = 64, h: int = 48) -> Image.Image:
    """A non-uniform picture so truncation and rotation are observable."""
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], axis=2)
    return Image.fromarray(arr.astype(np.uint8))


def _noise(w: int = 128, h: int = 128) -> Image.Image:
    """Incompressible content, so encoded sizes and truncation points are predictable."""
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


# ---------------------------------------------------------------------------------------------- good input


@pytest.mark.parametrize("kind", ["path", "str", "bytes", "file", "pil", "array"])
def test_every_source_kind_gives_the_same_rgb(tmp_path, kind):
    ref = _photo()
    data = _encode(ref)
    path = tmp_path / "a.png"
    path.write_bytes(data)
    src = {
        "path": path,
        "str": str(path),
        "bytes": data,
        "file": io.BytesIO(data),
        "pil": ref,
        "array": np.asarray(ref),
    }[kind]
    out = load_image(src)
    assert out.mode == "RGB" and out.size == (64, 48)
    assert np.array_equal(np.asarray(out), np.asarray(ref))


def test_result_is_a_copy_of_a_pil_input():
    ref = _photo()
    out = load_image(ref)
    out.putpixel((0, 0), (1, 2, 3))
    assert ref.getpixel((0, 0)) != (1, 2, 3)


def test_exif_orientation_is_applied():
    ref = _photo(64, 32)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = _encode(ref, "JPEG", exif=exif, quality=95)
    out = load_image(data)
    assert out.size == (32, 64)  # width and height swapped
    expected = ref.transpose(Image.Transpose.ROTATE_270)
    diff = np.abs(np.asarray(out, dtype=int) - np.asarray(expected, dtype=int)).mean()
    assert diff < 8  # JPEG noise only


def test_16bit_png_is_scaled_not_clipped():
    arr = np.zeros((16, 16), dtype=np.uint16)
    arr[:, :8] = 65535
    arr[:, 8:] = 32896  # 128 * 257
    data = _encode(Image.fromarray(arr))
    assert Image.open(io.BytesIO(data)).mode in ("I;16", "I")
    out = np.asarray(load_image(data))
    assert out.shape == (16, 16, 3)
    assert (out[:, :8] == 255).all() and (out[:, 8:] == 128).all()


def test_mode_i_and_f_images():
    i_img = Image.fromarray(np.arange(256, dtype=np.int32).reshape(16, 16) * 257)
    assert i_img.mode == "I"
    out = np.asarray(load_image(i_img))[:, :, 0]
    assert out[0, 0] == 0 and out[-1, -1] == 255 and out[8, 0] == 128

    f_img = Image.fromarray(np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16))
    assert f_img.mode == "F"
    out = np.asarray(load_image(f_img))[:, :, 0]
    assert out[0, 0] == 0 and out[-1, -1] == 255


def test_palette_transparency_and_rgba_go_on_white():
    pal = Image.new("P", (16, 16), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    pal.paste(1, (0, 0, 8, 16))  # left half red, right half index 0 = transparent black
    data = _encode(pal, transparency=0)
    out = np.asarray(load_image(data))
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[0, 15]) == (255, 255, 255)

    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 2] = 255
    rgba[:, :8, 3] = 255  # opaque blue left, fully transparent right
    out = np.asarray(load_image(rgba))
    assert tuple(out[0, 0]) == (0, 0, 255) and tuple(out[0, 15]) == (255, 255, 255)


@pytest.mark.parametrize("mode", ["L", "LA", "1", "CMYK", "P"])
def test_other_modes_become_rgb(mode):
    img = _photo().convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    out = load_image(_encode(img, fmt))
    assert out.mode == "RGB" and out.size == (64, 48)
    if mode in ("L", "LA"):
        arr = np.asarray(out)
        assert (arr[..., 0] == arr[..., 1]).all() and arr.std() > 10


@pytest.mark.parametrize(
    "arr",
    [
        np.ones((10, 10), bool),
        np.full((10, 10, 1), 7, np.int64),
        np.full((10, 10, 3), 65535, np.uint16),
        np.full((10, 10, 3), 1.0, np.float32),
    ],
)
def test_array_dtypes(arr):
    out = np.asarray(load_image(arr))
    assert out.shape == (10, 10, 3)
    assert out.max() in (7, 255)


# ---------------------------------------------------------------------------------------------- bad input


def _reason(src) -> str:
    with pytest.raises(ImageInputError) as info:
        load_image(src)
    assert str(info.value) and "Traceback" not in str(info.value)
    return info.value.reason


def test_empty_inputs(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert _reason(empty) == "empty"
    assert _reason(b"") == "empty"
    assert _reason(io.BytesIO()) == "empty"
    assert _reason(np.zeros((0, 0, 3), np.uint8)) == "empty"


def test_missing_path_and_directory(tmp_path):
    assert _reason(tmp_path / "nope.png") == "missing"
    assert _reason(tmp_path) == "missing"


def test_not_an_image_text_and_zip(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture\n" * 20)
    with pytest.raises(ImageInputError, match="not an image") as info:
        load_image(text)
    assert "notes.png" in str(info.value)

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", "hello")
    assert _reason(buf.getvalue()) == "not_image"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files(fmt):
    data = _encode(_noise(), fmt)
    with pytest.raises(ImageInputError, match="corrupt or truncated"):
        load_image(data[: len(data) // 2])


def test_too_small():
    with pytest.raises(ImageInputError, match="at least 8x8") as info:
        load_image(_encode(Image.new("RGB", (1, 1))))
    assert info.value.reason == "too_small"
    assert _reason(np.zeros((4, 100, 3), np.uint8)) == "too_small"
    assert load_image(Image.new("RGB", (8, 8))).size == (8, 8)


def test_decompression_bomb_is_refused_from_the_header():
    """A valid PNG header claiming 100000x100000 px (and no pixel data) is refused before decoding."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")
    with pytest.raises(ImageInputError, match="decompression bomb") as info:
        load_image(data)
    assert info.value.reason == "bomb"


def test_our_pixel_cap_is_below_pils(monkeypatch):
    """Between our cap and PIL's warning threshold the image is still refused (and PIL never warns)."""
    monkeypatch.setattr(images, "MAX_PIXELS", 32 * 32 - 1)
    assert _reason(_encode(Image.new("RGB", (32, 32)))) == "bomb"


def test_pil_bomb_warning_becomes_our_error(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # PIL now warns for 11x11 and errors above 200
    assert _reason(_encode(Image.new("RGB", (11, 11)))) == "bomb"
    assert _reason(_encode(Image.new("RGB", (20, 20)))) == "bomb"


def test_too_many_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_BYTES", 1000)
    data = _encode(_noise())
    assert len(data) > 1000
    path = tmp_path / "big.png"
    path.write_bytes(data)
    assert _reason(path) == "too_large_bytes"
    assert _reason(data) == "too_large_bytes"
    assert _reason(io.BytesIO(data)) == "too_large_bytes"


def test_unsupported_sources():
    assert _reason(12345) == "unsupported"
    assert _reason(io.StringIO("abc")) == "unsupported"
    assert _reason(np.zeros((10, 10, 2), np.uint8)) == "unsupported"


# ---------------------------------------------------------------------------------------------- masks


def test_load_mask_any_nonzero_channel_and_resize():
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[2:5, 3:9, 0] = 255  # red only ("rbg" masks are coloured sometimes)
    arr[10, 30, 2] = 1  # a single faint blue pixel still counts
    mask = load_mask(_encode(Image.fromarray(arr)))
    assert mask.dtype == bool and mask.shape == (20, 40)
    assert mask.sum() == 3 * 6 + 1 and mask[10, 30]

    small = load_mask(Image.fromarray(arr), size=(20, 10))
    assert small.shape == (10, 20) and small.dtype == bool
    assert set(np.unique(small)) <= {False, True} and small.any()


def test_load_mask_modes():
    binary = Image.new("1", (16, 16), 0)
    binary.paste(1, (0, 0, 4, 4))
    assert load_mask(binary).sum() == 16
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 255  # red everywhere, but only the top rows are opaque
    rgba[:2, :, 3] = 255
    assert load_mask(rgba).sum() == 32
    assert not load_mask(np.zeros((16, 16), np.uint8)).any()


def test_load_mask_bad_input():
    with pytest.raises(ImageInputError):
        load_mask(b"not a mask")


# ---------------------------------------------------------------------------------------------- model size


def test_to_model_size():
    out = to_model_size(_photo(100, 50))
    assert out.size == (448, 448) and out.mode == "RGB"
    assert to_model_size(_photo().convert("L"), 32).size == (32, 32)
    same = Image.new("RGB", (448, 448))
    assert to_model_size(same) is not same
