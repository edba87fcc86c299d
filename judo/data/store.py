"""Append-only, resumable JSON-lines output for the data builders.

Why: a stage build asks a paid teacher thousands of questions over hours. A crash, a Ctrl-C or a lost
connection must cost at most the items that were in flight, and a rerun must neither ask again for what
is on disk nor write it twice. So every finished *item* (one teacher unit of work: an image, a snippet,
a question) is appended with all its rows in one `write` + `fsync`, each row stamped with the item id and
the item's row count. On opening, the store

  * cuts a torn last line (a write interrupted half-way) off the file,
  * drops the rows of an item whose row count does not match (an interrupted multi-line write),

and rewrites the file only when it had to repair it. `done` then holds every item that is fully on disk.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ITEM_ID = "item_id"
ITEM_ROWS = "item_rows"


class StoreError(RuntimeError):
    """The output file is not a store this code wrote (names the file and line)."""


class JsonlStore:
    """Rows of finished items in `path` (one JSON object per line), safe to append to from one process."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.repaired: list[str] = []  # human-readable notes of what opening had to fix
        self._rows: list[dict[str, Any]] = self._load_and_repair()
        self.done: set[str] = {r[ITEM_ID] for r in self._rows}

    # -- reading ------------------------------------------------------------------------------

    def _load_and_repair(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        torn = lines.pop()  # text after the last newline: empty for a clean file
        rows: list[dict[str, Any]] = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise StoreError(f"{self.path}:{number}: not a JSON line ({err}); "
                                 "the file was not written by this builder or was edited by hand") from err
            if not isinstance(row, dict) or ITEM_ID not in row or ITEM_ROWS not in row:
                raise StoreError(f"{self.path}:{number}: row lacks {ITEM_ID!r}/{ITEM_ROWS!r}; "
                                 "use a fresh output folder")
            rows.append(row)
        if torn.strip():
            self.repaired.append(f"cut a torn last line ({len(torn)} bytes) from {self.path.name}")
        counts = Counter(r[ITEM_ID] for r in rows)
        complete = [r for r in rows if counts[r[ITEM_ID]] == r[ITEM_ROWS]]
        dropped = {r[ITEM_ID] for r in rows} - {r[ITEM_ID] for r in complete}
        if dropped:
            self.repaired.append(f"dropped {len(dropped)} incomplete item(s) from {self.path.name}: "
                                 + ", ".join(sorted(dropped)[:5]))
        if self.repaired:
            for note in self.repaired:
                log.warning(note)
            self._rewrite(complete)
        return complete

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row on disk, in the order written."""
        return iter(list(self._rows))

    def __len__(self) -> int:
        return len(self._rows)

    # -- writing ------------------------------------------------------------------------------

    def append_item(self, item_id: str, rows: list[dict[str, Any]]) -> None:
        """Append all rows of one finished item atomically enough: one write, flushed and fsynced."""
        if item_id in self.done:
            raise StoreError(f"item {item_id!r} is already in {self.path}; a builder must skip done items")
        if not rows:
            raise ValueError("an item needs at least one row (record failures elsewhere)")
        stamped = [{ITEM_ID: item_id, ITEM_ROWS: len(rows), **row} for row in rows]
        blob = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in stamped)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        self._rows.extend(stamped)
        self.done.add(item_id)


class JsonlLog:
    """A plain append-only log (raw teacher replies, failures): one JSON object per line, torn tail ignored.

    Logs are for people and audits, not for resuming, so a torn last line is simply skipped on read.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The complete items' rows of a store written by another build, read-only (no repair on disk)."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path} does not exist; build that stage first")
    rows = []
    for line in path.read_text(encoding="utf-8").split("\n")[:-1]:  # the part after the last newline is torn
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise StoreError(f"{path}: a line is not JSON ({err})") from err
    counts = Counter(r.get(ITEM_ID) for r in rows)
    return [r for r in rows if counts[r.get(ITEM_ID)] == r.get(ITEM_ROWS)]
