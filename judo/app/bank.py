"""The app's bank for the comparator: the product's whole golden gallery, the chosen template first.

Why here: the inspector picks one template to look at, but the comparator judges best against every
golden sample of the product (judo.comparator.bank). So, for the comparator engine only, the request's
template becomes [the chosen one, the rest of the gallery]; unreadable gallery pictures are skipped
and named in the notes. When the bank is exactly one folder of golden samples (the chosen template
one of them), its calibration is kept beside them (judo.comparator.stored_calibration) and rebuilt
whenever the pictures change.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PIL import Image

from judo.engines.base import InspectionRequest
from judo.images import ImageInputError, load_image


def gallery_bank(request: InspectionRequest, gallery: list[Path]) -> tuple[InspectionRequest, list[str]]:
    """`request` with the gallery as its template bank (the chosen template first), and notes.

    The chosen template is recognised in the gallery by its pixels (Gradio's copy of a gallery file has
    another path). A template that is not in the gallery (an own upload) is judged alone: the gallery
    of a product chosen earlier may not be its product."""
    from judo.comparator.bank import pixel_digest

    if not gallery:
        return request, []
    chosen = pixel_digest(request.template)
    notes: list[str] = []
    images: list[Image.Image] = []
    found = False
    for path in gallery:
        try:
            img = load_image(path)
        except ImageInputError:
            notes.append(f"Golden sample {Path(path).name} could not be read and was left out of the bank.")
            continue
        if pixel_digest(img) == chosen:
            found = True
            request.template.info.setdefault("name", Path(path).name)
            continue
        img.info["name"] = Path(path).name
        images.append(img)
    if not found:  # an upload or another product's picture: the gallery is not its bank
        return request, ["The template is not one of this product's golden samples: it is judged alone."]
    if not images:
        return request, notes
    bank = replace(request, template=[request.template, *images])
    if found and not notes and len(images) >= 2:
        _store_calibration(gallery, bank.templates)
    return bank, notes


def refresh_calibration(gallery: list[Path]) -> bool:
    """After the golden samples changed (judo.golden): the stored calibration of the product's new bank,
    rebuilt now rather than by the next inspection (its key, the pictures' content hashes, changed).
    False when nothing is stored: the gallery is not one folder of enough readable pictures."""
    from judo.comparator.bank import BankError

    try:
        return _store_calibration(gallery, list(gallery))
    except BankError:
        return False


def _store_calibration(paths: list[Path], templates: list) -> bool:
    """Keep the calibration beside the golden samples when they all lie in one folder."""
    from judo.comparator import build_bank, stored_calibration
    from judo.comparator.calibration import MIN_NORMALS

    folders = {Path(p).resolve().parent for p in paths}
    if len(folders) != 1:
        return False
    bank = build_bank(templates)
    if len(bank) < MIN_NORMALS:
        return False
    stored_calibration(bank, folders.pop())
    return True
