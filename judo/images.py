"""Safe image input: every image a user, a dataset or a test hands us goes through here.

Why a module of its own: uploads in the app, MMAD files on disk and arrays in tests all need the same
guarantees before a model sees them -- a plain RGB picture of sane size, upright (EXIF orientation
applied), with 16-bit, palette and transparent images converted correctly -- and bad input must end as
one `ImageInputError` whose message can be shown to a user as is, never as a PIL traceback.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Decompression-bomb guard: images with more pixels than this are refused from their header, before
#: any pixel is decoded (a 10 kB PNG can claim 100000 x 100000 pixels = 30 GB once decoded).
MAX_PIXELS = 64_000_000
#: Largest encoded input we read (files, bytes, streams).
MAX_BYTES = 64 * 1024 * 1024
#: Smallest accepted side. Below 8 px there is nothing to inspect and a 16x16 patch grid is meaningless.
MIN_SIDE = 8
#: Background used when flattening transparency: white, as a viewer shows a transparent product shot.
BACKGROUND = (255, 255, 255)

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes] | Image.Image | np.ndarray


class ImageInputError(ValueError):
    """Bad image input. `str(err)` is a user-facing sentence; `reason` is a stable machine code.

    Reasons: empty, missing, too_large_bytes, not_image, corrupt, bomb, too_small, unsupported.
    """

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


# ----------------------------------------------------------------------------------------------
# Reading the encoded bytes


def _describe(src: object) -> str:
    if isinstance(src, (str, os.PathLike)):
        return f"'{os.fspath(src)}'"
    name = getattr(src, "name", None)
    return f"'{name}'" if isinstance(name, str) else "the image"


def _read_bytes(src: object) -> bytes:
    """Encoded bytes of a path, bytes-like or binary stream, refusing empty and oversized input."""
    what = _describe(src)
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.exists():
            raise ImageInputError(f"Image file {what} does not exist.", "missing")
        if not path.is_file():
            raise ImageInputError(f"{what} is not a file.", "missing")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ImageInputError(_too_large_bytes(what, size), "too_large_bytes")
        data = path.read_bytes()
    elif isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
    elif hasattr(src, "read"):
        data = src.read(MAX_BYTES + 1)  # type: ignore[union-attr]
        if isinstance(data, str):
            raise ImageInputError(
                "The stream is opened in text mode; open images in binary mode.", "unsupported"
            )
        data = bytes(data or b"")
    else:
        raise ImageInputError(
            f"Cannot read an image from a {type(src).__name__}; give a path, bytes, a binary file, "
            "a PIL image or a numpy array.",
            "unsupported",
        )
    if not data:
        raise ImageInputError(f"{what} is empty (0 bytes).", "empty")
    if len(data) > MAX_BYTES:
        raise ImageInputError(_too_large_bytes(what, len(data)), "too_large_bytes")
    return data


def _too_large_bytes(what: str, size: int) -> str:
    return f"{what} is {size / 2**20:.1f} MB; the limit is {MAX_BYTES / 2**20:.0f} MB."


def _check_size(width: int, height: int, what: str) -> None:
    if width * height > MAX_PIXELS:
        raise ImageInputError(
            f"{what} is {width}x{height} pixels ({width * height / 1e6:.0f} MP); images above "
            f"{MAX_PIXELS / 1e6:.0f} MP are refused (possible decompression bomb).",
            "bomb",
        )
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageInputError(
            f"{what} is only {width}x{height} pixels; images must be at least {MIN_SIDE}x{MIN_SIDE}.",
            "too_small",
        )


def _decode(data: bytes, what: str) -> Image.Image:
    """Open, size-check from the header, then decode fully; PIL's failures become ImageInputError."""
    with warnings.catch_warnings():
        # PIL warns above its own limit and raises above twice that; both mean "bomb" for us.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageInputError(
                f"{what} declares too many pixels; images above {MAX_PIXELS / 1e6:.0f} MP are refused "
                "(possible decompression bomb).",
                "bomb",
            ) from exc
        except UnidentifiedImageError as exc:
            raise ImageInputError(
                f"{what} is not an image in a format we can read (PNG, JPEG, BMP, TIFF, WebP, GIF).",
                "not_image",
            ) from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageInputError(f"{what} is a corrupt or truncated image file.", "corrupt") from exc
        _check_size(img.width, img.height, what)  # header only: nothing decoded yet
        try:
            # Truncation is detected here unless some code in the process has set PIL's global
            # ImageFile.LOAD_TRUNCATED_IMAGES; we respect that choice rather than flip global state.
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageInputError(f"{what} is too large to decode safely.", "bomb") from exc
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
            raise ImageInputError(f"{what} is a corrupt or truncated image file.", "corrupt") from exc
    return img


def _open(src: ImageSource) -> Image.Image:
    """Any supported source -> a fully decoded, upright PIL image in its original mode."""
    if isinstance(src, Image.Image):
        _check_size(src.width, src.height, "The image")
        try:
            src.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageInputError("The image is corrupt or truncated.", "corrupt") from exc
        img = src
    elif isinstance(src, np.ndarray):
        return _from_array(src)
    else:
        what = _describe(src)
        img = _decode(_read_bytes(src), what)
    try:
        upright = ImageOps.exif_transpose(img)
    except (OSError, ValueError, KeyError, TypeError, SyntaxError, struct.error):
        # malformed EXIF must not make a readable picture unreadable
        upright = img
    return upright if upright is not None else img


# ----------------------------------------------------------------------------------------------
# Mode conversion


def _from_array(arr: np.ndarray) -> Image.Image:
    """ndarray (H,W), (H,W,1), (H,W,3) or (H,W,4) of bool/int/float -> 8-bit L/RGB/RGBA image."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageInputError(
            f"An image array must have shape (H, W), (H, W, 3) or (H, W, 4); got {arr.shape}.", "unsupported"
        )
    if arr.size == 0:
        raise ImageInputError("The image array is empty.", "empty")
    _check_size(arr.shape[1], arr.shape[0], "The image array")
    if arr.dtype == bool:
        arr8 = arr.astype(np.uint8) * 255
    elif arr.dtype == np.uint8:
        arr8 = arr
    elif arr.dtype == np.uint16:
        arr8 = _scale_16bit(arr)
    elif np.issubdtype(arr.dtype, np.integer):
        arr8 = np.clip(arr, 0, 255).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        arr8 = _scale_float(arr)
    else:
        raise ImageInputError(f"Image arrays of dtype {arr.dtype} are not supported.", "unsupported")
    return Image.fromarray(np.ascontiguousarray(arr8))


def _scale_16bit(arr: np.ndarray) -> np.ndarray:
    """Full-range 16-bit -> 8-bit: 65535 maps to 255 (divide by 257, rounded), not a clip to 255."""
    return np.round(arr.astype(np.float64) / 257.0).clip(0, 255).astype(np.uint8)


def _scale_float(arr: np.ndarray) -> np.ndarray:
    """Float images: [0, 1] is the usual convention, [0, 255] the other; anything else is min-max scaled."""
    a = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(a.min()), float(a.max())
    if lo >= 0.0 and hi <= 1.0:
        a = a * 255.0
    elif not (lo >= 0.0 and hi <= 255.0):
        a = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
    return np.round(a).clip(0, 255).astype(np.uint8)


def _flatten_alpha(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB, keeping the look: alpha over white, 16-bit scaled, palette transparency kept."""
    mode = img.mode
    if mode == "RGB":
        return img.copy()
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _flatten_alpha(img)
    if mode == "P":
        if "transparency" in img.info:
            return _flatten_alpha(img)
        return img.convert("RGB")
    if mode.startswith("I;16"):
        arr = np.asarray(img).astype(np.uint16)
        return Image.fromarray(_scale_16bit(arr)).convert("RGB")
    if mode == "I":
        arr = np.asarray(img)
        # Mode I files are nearly always 16-bit PNG/TIFF data; otherwise fall back to min-max.
        if arr.min() >= 0 and arr.max() <= 65535:
            arr8 = _scale_16bit(arr)
        else:
            arr8 = _scale_float(arr.astype(np.float64))
        return Image.fromarray(arr8).convert("RGB")
    if mode == "F":
        return Image.fromarray(_scale_float(np.asarray(img))).convert("RGB")
    try:
        return img.convert("RGB")  # 1, L, CMYK, YCbCr, ...
    except (ValueError, OSError) as exc:
        raise ImageInputError(f"Images in colour mode '{mode}' are not supported.", "unsupported") from exc


# ----------------------------------------------------------------------------------------------
# Public API


def load_image(src: ImageSource) -> Image.Image:
    """Load any supported source as a new, upright RGB image, or raise ImageInputError."""
    return _to_rgb(_open(src))


def load_mask(src: ImageSource, size: tuple[int, int] | None = None) -> np.ndarray:
    """A defect mask as bool (H, W): a pixel is set when any colour channel is nonzero.

    MMAD's `rbg_mask` files are RGB (sometimes coloured) PNGs; binary, 0/255 and palette masks work
    too. Transparent pixels never count. `size=(width, height)` resizes with nearest neighbour so the
    mask stays binary and aligned with an image resized to the same size.
    """
    img = _open(src)
    if img.mode == "P":
        img = img.convert("RGBA")
    arr = np.asarray(img)
    if arr.ndim == 3:
        bands = img.getbands()
        if "A" in bands:
            alpha = arr[:, :, bands.index("A")] != 0
            colour = np.delete(arr, bands.index("A"), axis=2)
            mask = np.any(colour != 0, axis=2) & alpha
        else:
            mask = np.any(arr != 0, axis=2)
    else:
        mask = arr != 0
    if size is not None and (mask.shape[1], mask.shape[0]) != tuple(size):
        width, height = int(size[0]), int(size[1])
        if width < 1 or height < 1:
            raise ImageInputError(f"Mask size must be positive, got {size}.", "unsupported")
        resized = Image.fromarray(mask.astype(np.uint8) * 255).resize((width, height), Image.NEAREST)
        mask = np.asarray(resized) != 0
    return np.ascontiguousarray(mask, dtype=bool)


def to_model_size(img: ImageSource, size: int = 448) -> Image.Image:
    """Resize to size x size RGB (bicubic), the square the model's 16x16 patch grid is defined on.

    The aspect ratio is not kept on purpose: MMAD images and masks are mapped cell for cell onto the
    grid, so the grid must cover the whole picture (see judo.grid.cell_box for non-square originals).
    """
    rgb = img if isinstance(img, Image.Image) and img.mode == "RGB" else load_image(img)
    if rgb.size == (size, size):
        return rgb.copy()
    return rgb.resize((size, size), Image.BICUBIC)
