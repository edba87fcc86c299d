"""Which parts a batch inspects: the images of a folder or of a zip archive, and what was left out.

A folder is read non-recursively by default (``recursive=True`` walks its subfolders); a part's name is
its path relative to the folder, with ``/`` separators. A zip is never extracted to disk: each member is
read into memory when its turn comes, so a member named ``../../etc/passwd`` or ``/abs/path`` can write
nothing anywhere; such names are still refused and listed, as are symbolic links, encrypted members and
archives whose member count or uncompressed size exceed the caps (zip bombs). Files that are not images
by their extension are listed as skipped with the reason; whether an image file really decodes is
checked when it is inspected (judo.images.load_image), so a corrupt one is skipped then, never fatal.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from judo.images import MAX_BYTES

#: File name endings read as images (PIL decodes them; judo.images validates the content).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"})
#: Zip caps: members, total uncompressed bytes, one member's bytes (judo.images' own input cap) and
#: the largest compression ratio a member may claim (image formats barely compress further).
MAX_MEMBERS = 5000
MAX_TOTAL_BYTES = 2 * 1024**3
MAX_MEMBER_BYTES = MAX_BYTES
MAX_RATIO = 200


class BatchInputError(ValueError):
    """A folder or archive that cannot be read at all (missing, not a zip, over a cap)."""


@dataclass(frozen=True)
class Part:
    """One image to inspect: its name in the batch and how to read its bytes."""

    name: str
    path: Path | None = None  # a file on disk
    archive: Path | None = None  # or a member of this zip
    member: str | None = None

    def source(self) -> Path | bytes:
        """What judo.images.load_image reads: the file's path, or the member's bytes."""
        if self.path is not None:
            return self.path
        assert self.archive is not None and self.member is not None
        with zipfile.ZipFile(self.archive) as zf, zf.open(self.member) as fh:
            data = fh.read(MAX_MEMBER_BYTES + 1)  # never trust the header's size
        if len(data) > MAX_MEMBER_BYTES:
            raise BatchInputError(f"{self.name} is larger than {MAX_MEMBER_BYTES // 2**20} MB uncompressed")
        return data


@dataclass(frozen=True)
class Skipped:
    """A file that is not inspected, and why (shown to the user, reported in the exports)."""

    name: str
    reason: str


@dataclass
class Discovery:
    parts: list[Part] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _is_image_name(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def _kind(name: str) -> str | None:
    """Why a name is not a part (None: it is one)."""
    parts = PurePosixPath(name).parts
    if any(p.startswith(".") for p in parts) or "__MACOSX" in parts:
        return "hidden or system file"
    if not _is_image_name(name):
        return "not an image file (by its extension)"
    return None


def discover_folder(folder: str | os.PathLike, *, recursive: bool = False) -> Discovery:
    """The images directly in `folder` (and in its subfolders with `recursive`), sorted by name.
    Symbolic links are skipped (they may point outside the folder)."""
    root = Path(folder)
    if not root.is_dir():
        raise BatchInputError(f"{root} is not a folder")
    found = Discovery()
    entries = sorted(
        root.rglob("*") if recursive else root.iterdir(), key=lambda p: p.relative_to(root).as_posix()
    )
    for path in entries:
        name = path.relative_to(root).as_posix()
        if path.is_symlink():
            found.skipped.append(Skipped(name, "symbolic link (not followed)"))
        elif path.is_dir():
            continue
        elif not path.is_file():
            found.skipped.append(Skipped(name, "not a regular file"))
        elif path.stat().st_size > MAX_MEMBER_BYTES:
            found.skipped.append(Skipped(name, f"larger than {MAX_MEMBER_BYTES // 2**20} MB"))
        elif reason := _kind(name):
            found.skipped.append(Skipped(name, reason))
        else:
            found.parts.append(Part(name, path=path))
    return found


def _unsafe(name: str) -> str | None:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path in the archive (refused)"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "path leaves the archive (refused)"
    return None


def discover_zip(archive: str | os.PathLike) -> Discovery:
    """The image members of a zip, sorted by name, with every refused member listed and why."""
    path = Path(archive)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise BatchInputError(f"{path.name} is not a readable zip archive ({err})") from None
    found = Discovery()
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > MAX_MEMBERS:
            raise BatchInputError(f"{path.name} has {len(infos)} files; at most {MAX_MEMBERS} are read")
        total = sum(i.file_size for i in infos)
        if total > MAX_TOTAL_BYTES:
            raise BatchInputError(
                f"{path.name} unpacks to {total / 2**30:.1f} GB; at most {MAX_TOTAL_BYTES / 2**30:.0f} GB are read"
            )
        for info in sorted(infos, key=lambda i: i.filename):
            name = info.filename
            reason = _unsafe(name)
            if reason is None and stat.S_ISLNK(info.external_attr >> 16):
                reason = "symbolic link (not followed)"
            if reason is None and info.flag_bits & 0x1:
                reason = "encrypted (no password is asked for)"
            if reason is None and info.file_size > MAX_MEMBER_BYTES:
                reason = f"larger than {MAX_MEMBER_BYTES // 2**20} MB uncompressed"
            if reason is None and info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
                reason = f"compressed more than {MAX_RATIO}:1 (a zip bomb?)"
            reason = reason or _kind(name)
            if reason:
                found.skipped.append(Skipped(name, reason))
            else:
                found.parts.append(Part(name, archive=path, member=name))
    return found


def discover(sources: str | os.PathLike | list[str | os.PathLike], *, recursive: bool = False) -> Discovery:
    """Parts from a folder, a zip, or a list of image files and zips (an upload), in the order given;
    names repeated across sources get a ``#2`` suffix so every part has its own name."""
    items = sources if isinstance(sources, list) else [sources]
    found = Discovery()
    for item in items:
        path = Path(item)
        if path.is_dir():
            one = discover_folder(path, recursive=recursive)
        elif path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
            one = discover_zip(path)
        elif path.is_file():
            reason = _kind(path.name)
            one = Discovery(
                [Part(path.name, path=path)] if reason is None else [],
                [Skipped(path.name, reason)] if reason else [],
            )
        else:
            raise BatchInputError(f"{path} does not exist")
        found.parts += one.parts
        found.skipped += one.skipped
    _unique_names(found.parts)
    return found


def _unique_names(parts: list[Part], rename: Callable[[str, int], str] = lambda n, k: f"{n}#{k}") -> None:
    seen: dict[str, int] = {}
    for i, part in enumerate(parts):
        count = seen.get(part.name, 0) + 1
        seen[part.name] = count
        if count > 1:
            parts[i] = Part(rename(part.name, count), part.path, part.archive, part.member)
