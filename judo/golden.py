"""A lab's golden samples on disk: `<golden_dir>/<product>/*.png`, added to and removed from safely.

Adding writes the image as PNG under a name that carries its content hash (``bottle-3f9a1c2e.png``), in
one atomic rename, so a half-written file is never part of a bank and the same picture is never added
twice. Removing never deletes: the file moves into the product's ``.removed/`` folder, from where it can
be put back by hand. The bank's calibration (judo.comparator.calibration) is keyed by the images'
content hashes, so it is rebuilt on its own after either change.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from judo.comparator.calibration import MIN_NORMALS
from judo.images import ImageInputError, load_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
REMOVED_FOLDER = ".removed"
#: More golden samples than this per product add nothing to a bank (see judo.comparator.bank) and slow
#: every calibration: adding one more is refused with the reason.
MAX_GOLDEN_PER_PRODUCT = 48
_PRODUCT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


class GoldenError(ValueError):
    """A golden-sample change that cannot be made; the message says why, for the inspector."""


@dataclass(frozen=True)
class GoldenChange:
    """What a change did: the file it concerns, and a sentence for the inspector."""

    path: Path
    message: str
    changed: bool = True


def product_folder(golden_dir: str | Path, product: str) -> Path:
    """The folder of `product`'s golden samples under `golden_dir`; refuses names that are not one plain
    folder name (no separators, no "..", no hidden names)."""
    if not isinstance(product, str) or not _PRODUCT_NAME.match(product) or product.strip(". ") != product:
        raise GoldenError(
            f"{product!r} is not a usable product name: use letters, digits, spaces, '-', '_' or '.' "
            "(at most 64, starting with a letter or digit)."
        )
    return Path(golden_dir) / product


def _folder(golden_dir: str | Path | None, product: str, folder: str | Path | None) -> Path:
    if folder is not None:
        return Path(folder)
    if golden_dir is None:
        raise GoldenError(f"{product} has no golden-sample folder.")
    return product_folder(golden_dir, product)


def golden_images(folder: Path) -> list[Path]:
    """The images directly in `folder`, sorted (the removed ones and hidden files are not)."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def _content_hash(img: Image.Image) -> str:
    return hashlib.sha256(img.convert("RGB").tobytes()).hexdigest()


def _stem(name: str | None) -> str:
    stem = Path(name).stem if name else "golden"
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in stem).strip("-_")
    return safe[:40] or "golden"


def add_golden(
    golden_dir: str | Path | None,
    product: str,
    image: object,
    name: str | None = None,
    *,
    folder: str | Path | None = None,
) -> GoldenChange:
    """Add `image` (a path, bytes, array or PIL image; validated as any input) to `product`'s golden
    samples. The same picture already there is not added again (``changed`` False). ``folder``: the
    product's own folder when it is not ``<golden_dir>/<product>`` (a configured product -> folder map)."""
    folder = _folder(golden_dir, product, folder)
    try:
        img = load_image(image)
    except ImageInputError as err:
        raise GoldenError(f"Not added: {err}") from None
    digest = _content_hash(img)
    existing = golden_images(folder)
    for path in existing:
        try:
            if _content_hash(load_image(path)) == digest:
                return GoldenChange(
                    path, f"{path.name} is already a golden sample of {product}.", changed=False
                )
        except ImageInputError:
            continue  # a broken file in the folder is the bank's warning, not a reason to refuse
    if len(existing) >= MAX_GOLDEN_PER_PRODUCT:
        raise GoldenError(
            f"Not added: {product} already has {len(existing)} golden samples, the most a bank uses; "
            "remove one first."
        )
    target = folder / f"{_stem(name)}-{digest[:8]}.png"
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".adding-", suffix=".png", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buf.getvalue())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise GoldenError(
            f"Not added: the golden folder of {product} cannot be written ({err.strerror or type(err).__name__})."
        ) from None
    count = len(existing) + 1
    return GoldenChange(target, f"Added {target.name} to {product}: {count} golden sample(s) now.")


def remove_golden(
    golden_dir: str | Path | None, product: str, file_name: str, *, folder: str | Path | None = None
) -> GoldenChange:
    """Move `file_name` out of `product`'s golden samples into its ``.removed/`` folder (``folder`` as
    in `add_golden`)."""
    folder = _folder(golden_dir, product, folder)
    name = Path(str(file_name)).name
    source = folder / name
    if name != str(file_name).replace("\\", "/").split("/")[-1] or source not in golden_images(folder):
        raise GoldenError(f"Not removed: {name!r} is not a golden sample of {product}.")
    removed = folder / REMOVED_FOLDER
    try:
        removed.mkdir(exist_ok=True)
        target = removed / name
        if target.exists():
            target = removed / f"{source.stem}-{os.getpid()}-{len(list(removed.iterdir()))}{source.suffix}"
        os.replace(source, target)
    except OSError as err:
        raise GoldenError(
            f"Not removed: the golden folder of {product} cannot be changed ({err.strerror or type(err).__name__})."
        ) from None
    left = len(golden_images(folder))
    note = f" A calibration needs at least {MIN_NORMALS}." if left < MIN_NORMALS else ""
    return GoldenChange(
        target, f"Removed {name} from {product} (kept in {REMOVED_FOLDER}/): {left} left.{note}"
    )
