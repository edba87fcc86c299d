"""Optional Real-IAD source for stage 1 (the paper adds 10 images per Real-IAD category to MMAD's 293).

Real-IAD is not part of MMAD and has no questions; stage 1 only needs anomalous images with masks and
normal images of the same category as templates. Expected layout (the Real-IAD release's
`realiad_1024/` or `realiad_512/` folder):

    <root>/<category>/NG/<defect code>/<sample>/<image>.jpg   anomalous view
    <root>/<category>/NG/<defect code>/<sample>/<image>.png   its mask (same file stem, nonzero = defect)
    <root>/<category>/OK/<sample>/<image>.jpg                 normal views (templates)

Defect codes are translated to words for the teacher (AK -> pit, ...); unknown codes are used as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

#: Real-IAD's defect codes (from its paper's defect list).
DEFECT_NAMES = {
    "AK": "pit",
    "BX": "deformation",
    "CH": "abrasion",
    "HS": "scratch",
    "PS": "damage",
    "QS": "missing parts",
    "YW": "foreign objects",
    "ZW": "contamination",
}


class RealIADError(RuntimeError):
    """The Real-IAD root does not have the expected layout (the message names the path)."""


@dataclass(frozen=True)
class RealIADImage:
    key: str  # path relative to the root, e.g. "audiojack/NG/AK/S0001/x.jpg"
    category: str
    defect: str  # readable defect name
    image_path: Path
    mask_path: Path | None


@dataclass
class RealIADRoot:
    root: Path
    anomalous: dict[str, list[RealIADImage]]  # category -> anomalous images with a mask
    normal: dict[str, list[Path]]  # category -> normal images


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def scan_realiad(root: str | Path) -> RealIADRoot:
    """Index a Real-IAD root; categories without both NG (with masks) and OK images are refused."""
    root = Path(root)
    if not root.is_dir():
        raise RealIADError(f"Real-IAD root {root} is not a folder")
    categories = sorted(p for p in root.iterdir() if p.is_dir() and (p / "NG").is_dir())
    if not categories:
        raise RealIADError(
            f"no <category>/NG folders under {root}; expected the layout "
            "<root>/<category>/NG/<defect>/<sample>/<image>.jpg (+ same-stem .png mask)"
        )
    anomalous: dict[str, list[RealIADImage]] = {}
    normal: dict[str, list[Path]] = {}
    for cat_dir in categories:
        category = cat_dir.name
        items = []
        for path in _images(cat_dir / "NG"):
            if path.suffix.lower() == ".png" and any(path.with_suffix(s).exists() for s in (".jpg", ".jpeg")):
                continue  # this .png is the mask of a .jpg view
            mask = path.with_suffix(".png") if path.suffix.lower() != ".png" else None
            if mask is None or not mask.exists():
                continue  # views without a mask cannot give a <seg> target
            code = path.relative_to(cat_dir / "NG").parts[0]
            items.append(
                RealIADImage(
                    path.relative_to(root).as_posix(),
                    category,
                    DEFECT_NAMES.get(code.upper(), code),
                    path,
                    mask,
                )
            )
        normals = _images(cat_dir / "OK") if (cat_dir / "OK").is_dir() else []
        if not items:
            raise RealIADError(f"{cat_dir / 'NG'} has no image with a same-stem .png mask")
        if not normals:
            raise RealIADError(f"{cat_dir / 'OK'} has no normal images to use as templates")
        anomalous[category], normal[category] = items, normals
    return RealIADRoot(root, anomalous, normal)
