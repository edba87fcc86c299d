"""Items of a data build in `data.jsonl`: resumable item by item, on top of `judo.jsonl.JsonlFile`.

Why: a stage build asks a paid teacher thousands of questions over hours. Every finished *item* (one
teacher unit of work: an image, a snippet, a question) is appended with all its rows in one write, each
row stamped with the item id and the item's row count. `JsonlFile` locks the file against a second run
and cuts a torn last line; on top of that the store drops the rows of an item whose row count does not
match (an interrupted multi-line write) and rewrites the file only when it had to repair it. `done` then
holds every item that is fully on disk.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from judo.jsonl import JsonlError, JsonlFile, read_jsonl

log = logging.getLogger(__name__)

ITEM_ID = "item_id"
ITEM_ROWS = "item_rows"


class StoreError(JsonlError):
    """The output file is not a store this code wrote (names the file and line)."""


def _complete(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counts = Counter(r.get(ITEM_ID) for r in rows)
    return [r for r in rows if counts[r.get(ITEM_ID)] == r.get(ITEM_ROWS)]


class JsonlStore:
    """Rows of finished items in `path`, owned by this process until `close()`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self._file = JsonlFile(path)
        self.path = self._file.path
        self.repaired: list[str] = []  # human-readable notes of what opening had to fix
        try:
            self._open()
        except BaseException:
            self._file.close()
            raise

    def _open(self) -> None:
        rows = self._file.rows
        for number, row in zip(self._file.line_numbers, rows, strict=True):
            if ITEM_ID not in row or ITEM_ROWS not in row:
                raise StoreError(
                    f"{self.path}:{number}: row lacks {ITEM_ID!r}/{ITEM_ROWS!r}; use a fresh output folder"
                )
        if self._file.torn_bytes:
            self.repaired.append(
                f"cut a torn last line ({self._file.torn_bytes} bytes) from {self.path.name}"
            )
        complete = _complete(rows)
        dropped = {r[ITEM_ID] for r in rows} - {r[ITEM_ID] for r in complete}
        if dropped:
            self.repaired.append(
                f"dropped {len(dropped)} incomplete item(s) from {self.path.name}: "
                + ", ".join(sorted(dropped)[:5])
            )
            self._file.rewrite(complete)
        for note in self.repaired:
            log.warning(note)
        self.done: set[str] = {r[ITEM_ID] for r in complete}

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row on disk, in the order written."""
        return iter(list(self._file.rows))

    def __len__(self) -> int:
        return len(self._file.rows)

    def append_item(self, item_id: str, rows: list[dict[str, Any]]) -> None:
        """Append all rows of one finished item in one write, flushed and fsynced."""
        if item_id in self.done:
            raise StoreError(f"item {item_id!r} is already in {self.path}; a builder must skip done items")
        if not rows:
            raise ValueError("an item needs at least one row (record failures elsewhere)")
        self._file.append({ITEM_ID: item_id, ITEM_ROWS: len(rows), **row} for row in rows)
        self.done.add(item_id)

    def close(self) -> None:
        self._file.close()


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The complete items' rows of a store written by another build, read-only (no repair on disk)."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path} does not exist; build that stage first")
    return _complete([row for _, row in read_jsonl(path)])
