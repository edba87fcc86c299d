"""JSON-lines files that a run appends to and resumes from: the one store behind `judo data` and `judo eval`.

Why: a data build asks a paid teacher for hours and an MMAD run asks 39,672 questions. A crash, a Ctrl-C
or `kill -9` must cost at most what was in flight, a rerun must neither redo what is on disk nor write it
twice, and two runs must never write one file at once. So `JsonlFile`

  * takes an exclusive lock beside the file (``.NAME.lock``, released by the kernel even after `kill -9`);
    a second run gets `OutputInUse` at once instead of interleaving duplicate lines;
  * cuts a torn last line (a write interrupted half-way) off the file, keeping a last line that is
    complete JSON and only lacks its newline;
  * appends a group of rows with one ``write`` + ``flush`` + ``fsync``, so after a crash every group is
    fully on disk or absent.

`read_jsonl` is the one parser of such files for readers: it names the file and line of a corrupt line
and skips a torn last line. `JsonlLog` is an append-only log for people (raw replies, failures).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from filelock import FileLock, Timeout


class JsonlError(RuntimeError):
    """A JSON-lines file that cannot be used as it is; the message names the file and line."""


class OutputInUse(JsonlError):
    """Another run holds the file's lock."""


def _parse(line: bytes, path: Path, number: int) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise JsonlError(f"{path}:{number}: not a JSON line ({exc}); the file was edited or damaged") from exc
    if not isinstance(row, dict):
        raise JsonlError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
    return row


def _split(raw: bytes, path: Path) -> tuple[list[tuple[int, dict[str, Any]]], bytes]:
    """(line number, row) of every complete line, and the torn tail (b"" when the file ends cleanly)."""
    lines = raw.split(b"\n")
    tail = lines.pop()  # the bytes after the last newline
    rows = [(n, _parse(line, path, n)) for n, line in enumerate(lines, 1) if line.strip()]
    if tail.strip():
        try:
            rows.append((len(lines) + 1, _parse(tail, path, len(lines) + 1)))
            tail = b""  # complete JSON that only lacks its newline
        except JsonlError:
            pass
    return rows, tail


def read_jsonl(path: str | os.PathLike) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) of every line of `path`; a torn last line is skipped with a warning, any other
    bad line raises `JsonlError` naming the file and line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise JsonlError(f"{path} does not exist") from exc
    rows, tail = _split(raw, path)
    if tail:
        warnings.warn(
            f"{path}: ignoring a torn last line ({len(tail)} bytes, an interrupted write)", stacklevel=2
        )
    return rows


class JsonlFile:
    """An append-only JSON-lines file owned by this process until `close()` (a context manager)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(self.path.with_name(f".{self.path.name}.lock"), timeout=0)
        try:
            self._lock.acquire()
        except Timeout:
            raise OutputInUse(
                f"{self.path} is being written by another run; wait for it to finish or choose another output"
            ) from None
        try:
            raw = self.path.read_bytes() if self.path.exists() else b""
            rows, tail = _split(raw, self.path)
        except BaseException:
            self._lock.release()
            raise
        self.rows: list[dict[str, Any]] = [row for _, row in rows]
        self.line_numbers: list[int] = [n for n, _ in rows]
        self.torn_bytes = len(tail)
        if tail:
            with open(self.path, "rb+") as fh:
                fh.truncate(len(raw) - len(tail))
                os.fsync(fh.fileno())
        elif raw and not raw.endswith(b"\n"):
            with open(self.path, "ab") as fh:
                fh.write(b"\n")
        self._fh: IO[str] = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held until close()

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append rows as one write, flushed and fsynced (all of them are on disk, or none)."""
        rows = list(rows)
        if not rows:
            return
        self._fh.write("".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.rows.extend(rows)

    def rewrite(self, rows: list[dict[str, Any]]) -> None:
        """Replace the whole content atomically (temp file + rename), e.g. after dropping broken groups."""
        self._fh.close()
        write_jsonl_atomically(self.path, rows)
        self.rows = list(rows)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held until close()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        if self._lock.is_locked:
            self._lock.release()

    def __enter__(self) -> JsonlFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_jsonl_atomically(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> Path:
    """Write a whole JSON-lines file through a temp file and a rename: readers see old or new, never half."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


class JsonlLog:
    """A plain append-only log (raw teacher replies, failures): for people and audits, not for resuming,
    so reading skips lines that do not parse."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            fh.flush()

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out
