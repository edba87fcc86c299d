"""The inspection log: every inspection (single, compare, batch) as one row of a SQLite database.

Why SQLite: a lab asks "what did we find on product X last week, by whom, at what sensitivity", and a
file in the data folder answers that with filters and indexes, from the app and from a script, with no
server to run. The log keeps the columns a person filters and reads (time, user, part, product,
engine, question, answer, verdict, sensitivity, cells, record path) and the whole record as JSON, so a
past inspection reopens after the app pruned its temporary downloads.

Safe for many writers: the database runs in WAL mode (readers never block the writer), each insert is
one short ``BEGIN IMMEDIATE`` transaction, and every call opens its own connection (any thread, any
process, after a fork too). A writer that cannot get the lock within the busy timeout gives up.

Never in the way of an inspection: `InspectionLog.open` is the one call that raises (`LogUnavailable`,
a sentence that says what to do); `InspectionLog.add_record` returns None or one sentence for the user
(locked, damaged, read-only, disk full) and the caller's result stands. Queries raise `LogUnavailable`.

The schema is versioned with ``PRAGMA user_version``; `MIGRATIONS` takes a file from any older version
(0: a new or empty file) to `SCHEMA_VERSION`, in one transaction.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: What kind of inspection a row was.
KINDS = ("single", "compare", "batch")
#: Seconds a writer waits for another writer's lock before it gives up (the inspection is not logged).
BUSY_TIMEOUT_S = 3.0
#: Pruning by retention runs at open and then at most this often (on the next insert).
PRUNE_EVERY_S = 3600.0
#: Rows a query returns when it names no limit.
DEFAULT_LIMIT = 100


class LogUnavailable(RuntimeError):
    """The log cannot be used. ``str()`` names the file (for the operator); ``reason`` says the same
    without any server path (for a visitor's page)."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


# ------------------------------------------------------------------------------------------ schema
def _v1(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE inspections (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            logged_at REAL NOT NULL,
            created TEXT,
            kind TEXT NOT NULL,
            user TEXT,
            part TEXT,
            product TEXT,
            engine TEXT,
            engine_label TEXT,
            question TEXT,
            answer TEXT,
            answer_text TEXT,
            verdict TEXT,
            sensitivity REAL,
            max_score REAL,
            cells TEXT NOT NULL DEFAULT '',
            n_cells INTEGER NOT NULL DEFAULT 0,
            record_path TEXT,
            record TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX inspections_time ON inspections(logged_at)")
    db.execute("CREATE INDEX inspections_product ON inspections(product, logged_at)")


#: version -> the step that takes a database from version-1 to it (AUTOINCREMENT ids are never reused,
#: so an id a person wrote down still names the same inspection after pruning).
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1}
assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION + 1))

_COLUMNS = (
    "id",
    "logged_at",
    "created",
    "kind",
    "user",
    "part",
    "product",
    "engine",
    "engine_label",
    "question",
    "answer",
    "answer_text",
    "verdict",
    "sensitivity",
    "max_score",
    "cells",
    "n_cells",
    "record_path",
    "record",
)


# -------------------------------------------------------------------------------------------- rows
@dataclass(frozen=True)
class LogRow:
    """One logged inspection. ``cells`` is the canonical seg text (``<seg>…</seg>``, empty: none)."""

    id: int
    logged_at: float  # seconds since the epoch, when the row was written
    created: str | None  # the record's own start time (local, ISO 8601)
    kind: str
    user: str | None
    part: str | None
    product: str | None
    engine: str | None
    engine_label: str | None
    question: str | None
    answer: str | None
    answer_text: str | None
    verdict: str | None
    sensitivity: float | None
    max_score: float | None
    cells: str
    n_cells: int
    record_path: str | None
    record_json: str

    @property
    def record(self) -> dict[str, Any]:
        """The whole inspection record as it was logged."""
        return json.loads(self.record_json)

    @property
    def time_text(self) -> str:
        """When, in the server's local time: ``2026-01-12 14:30:05``."""
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.logged_at))

    @property
    def overlay_path(self) -> str | None:
        """The overlay PNG written next to the record (``<stem>-overlay.png``), while it still exists."""
        if not self.record_path:
            return None
        p = Path(self.record_path)
        png = p.with_name(p.stem + "-overlay.png")
        return str(png) if png.is_file() else None


#: The CSV export's columns, in order (``time`` is `LogRow.time_text`; the record JSON is left out).
CSV_COLUMNS = (
    "id",
    "time",
    "kind",
    "user",
    "part",
    "product",
    "engine",
    "question",
    "answer",
    "answer_text",
    "verdict",
    "sensitivity",
    "max_score",
    "cells",
    "n_cells",
    "record_path",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (``=…``, ``+…``, ``-…``, ``@…``) gets a leading
    apostrophe, so a part named ``=HYPERLINK(…)`` stays text; numbers and other text are unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


# ---------------------------------------------------------------------------------------- filters
def _epoch(value: Any, name: str, *, end: bool = False) -> float | None:
    """A filter bound as seconds since the epoch. A date (``2026-01-31``) means its whole day: as
    ``until`` it ends at the next midnight. Naive times are local."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a date or a time, got {value!r}.")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{name} must be a date like 2026-01-31 or a time like 2026-01-31 14:30, got {text!r}."
            ) from None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, date):
        day = value + timedelta(days=1) if end else value
        return datetime(day.year, day.month, day.day).timestamp() - (1e-6 if end else 0.0)
    raise ValueError(f"{name} must be a date or a time, got {value!r}.")


def _where(
    product: str | None = None,
    verdict: str | None = None,
    since: Any = None,
    until: Any = None,
    user: str | None = None,
    kind: str | None = None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in (("product", product), ("verdict", verdict), ("user", user), ("kind", kind)):
        if value is not None and value != "":
            clauses.append(f"{column} = ?")
            args.append(value)
    lo, hi = _epoch(since, "since"), _epoch(until, "until", end=True)
    if lo is not None:
        clauses.append("logged_at >= ?")
        args.append(lo)
    if hi is not None:
        clauses.append("logged_at <= ?")
        args.append(hi)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


# --------------------------------------------------------------------------------------- messages
def _code(err: sqlite3.Error) -> str:
    name = getattr(err, "sqlite_errorname", "") or ""
    text = str(err).lower()
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return "busy"
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return "full"
    if name.startswith("SQLITE_READONLY") or "readonly" in text or "read-only" in text:
        return "readonly"
    if (
        name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
        or "not a database" in text
        or "malformed" in text
    ):
        return "corrupt"
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return "cantopen"
    if name.startswith("SQLITE_IOERR") or "disk i/o" in text:
        return "io"
    return "other"


def problem_sentence(err: sqlite3.Error | OSError) -> str:
    """What a failed write means for the user, in one sentence with no server path: the inspection's
    own result is complete either way."""
    if isinstance(err, OSError):
        why = f"the server could not write it ({err.strerror or type(err).__name__})"
    else:
        why = {
            "busy": "the log is locked by another program for too long",
            "full": "the server's disk is full",
            "readonly": "the log's file or folder is read-only",
            "corrupt": "the log file is damaged (the operator should move it aside; a new one is started)",
            "cantopen": "the log's file cannot be opened (its folder is missing or not writable)",
            "io": "the disk reported an error",
        }.get(_code(err), f"the database reported: {err}")
    return f"This inspection was not written to the inspection log: {why}. The result shown is complete."


def _unavailable(err: sqlite3.Error | OSError, path: Path) -> LogUnavailable:
    """The open-time message: what is wrong with which file, and what to do about it."""
    fix = "set history.path (or JUDO_HISTORY_PATH) to another file, or history.enabled: false"
    kind = "os" if isinstance(err, OSError) else _code(err)
    reasons = {
        "corrupt": (
            f"{path} is not a usable SQLite database (damaged, or another kind of file)",
            "move it aside or delete it and restart (a new log is started), or " + fix,
        ),
        "readonly": (f"{path} or its folder is read-only", "make the folder writable, or " + fix),
        "cantopen": (
            f"{path} cannot be created or opened (its folder is not writable or cannot be made)",
            "make the folder writable, or " + fix,
        ),
        "busy": (f"{path} is locked by another program", "close that program and restart, or " + fix),
        "full": (f"the disk holding {path} is full", "free some space, or " + fix),
    }
    if kind == "os":
        what = f"{path} cannot be created ({getattr(err, 'strerror', None) or type(err).__name__})"
        todo = "make the folder writable, or " + fix
    else:
        what, todo = reasons.get(kind, (f"{path} cannot be used ({err})", fix))
    reason = what.replace(str(path), "the log file").replace(str(path.parent), "the log folder")
    return LogUnavailable(
        f"The inspection log is off: {what}; {todo}.",
        f"The inspection log is off: {reason}. The operator can fix it in the server's settings.",
    )


# -------------------------------------------------------------------------------------------- log
def _plain(obj: Any) -> Any:
    """JSON for what a record may hold beyond JSON's types (sets, numpy values)."""
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def _number(value: Any) -> float | None:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


class InspectionLog:
    """A handle on one log file. Cheap to share between threads: each call opens its own connection."""

    def __init__(self, path: Path, *, retention_days: float | None, busy_timeout_s: float):
        self.path = path
        self.retention_days = retention_days
        self.busy_timeout_s = busy_timeout_s
        self._last_prune = 0.0

    # ------------------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        *,
        retention_days: float | None = None,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ) -> InspectionLog:
        """Create or migrate the database at ``path`` (its folder too) and prune by retention.
        Raises `LogUnavailable` with what to do when the file cannot be used."""
        p = Path(os.path.expanduser(os.fspath(path))).resolve()
        if retention_days is not None and retention_days <= 0:
            raise ValueError(
                f"retention_days must be above 0 (or None to keep every row), got {retention_days}."
            )
        self = cls(p, retention_days=retention_days, busy_timeout_s=busy_timeout_s)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise LogUnavailable(
                        f"The inspection log is off: {p} cannot use write-ahead logging (journal mode "
                        f"{mode!r}; a network or read-only file system?); set history.path (or "
                        "JUDO_HISTORY_PATH) to a file on a local disk.",
                        "The inspection log is off: its file system does not allow it.",
                    )
                self._migrate(db)
        except (sqlite3.Error, OSError) as err:
            raise _unavailable(err, p) from None
        self.prune()
        return self

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise LogUnavailable(
                f"The inspection log is off: {self.path} was written by a newer version of this program "
                f"(schema {version}, this one reads up to {SCHEMA_VERSION}); update the program, or set "
                "history.path (or JUDO_HISTORY_PATH) to another file.",
                "The inspection log is off: its file was written by a newer version of this program.",
            )
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            if version == 0:
                tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                if tables:
                    raise LogUnavailable(
                        f"The inspection log is off: {self.path} is a database of another program (tables "
                        f"{', '.join(tables[:5])}); set history.path (or JUDO_HISTORY_PATH) to a new file.",
                        "The inspection log is off: its file belongs to another program.",
                    )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](db)
                log.info("inspection log %s: schema %d -> %d", self.path, step - 1, step)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # isolation_level=None: no implicit transactions; every write below says BEGIN IMMEDIATE itself.
        db = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous = FULL")  # a logged row survives a power cut
            yield db
        finally:
            db.close()

    # ------------------------------------------------------------------------------ writing
    def add_record(
        self,
        record: dict[str, Any],
        *,
        record_path: str | None = None,
        user: str | None = None,
        part: str | None = None,
        product: str | None = None,
        kind: str = "single",
    ) -> str | None:
        """Write one inspection; None on success, else one sentence for the user. Never raises.

        ``part`` defaults to the record's query file name, ``product`` to its category."""
        try:
            row = self._row(record, record_path=record_path, user=user, part=part, product=product, kind=kind)
        except (TypeError, ValueError) as err:
            log.warning("inspection log: record not logged: %s", err)
            return (
                f"This inspection was not written to the inspection log: {err} The result shown is complete."
            )
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        try:
            with self._connect() as db:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.execute(f"INSERT INTO inspections ({names}) VALUES ({marks})", tuple(row.values()))
                    db.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                    raise
        except (sqlite3.Error, OSError) as err:
            log.warning("inspection log %s: insert failed: %s", self.path, err)
            return problem_sentence(err)
        if self.retention_days is not None and time.monotonic() - self._last_prune >= PRUNE_EVERY_S:
            try:
                self.prune()
            except LogUnavailable as err:
                log.warning("%s", err)
        return None

    @staticmethod
    def _row(
        record: dict[str, Any],
        *,
        record_path: str | None,
        user: str | None,
        part: str | None,
        product: str | None,
        kind: str,
    ) -> dict[str, Any]:
        if kind not in KINDS:
            raise ValueError(f"the kind must be one of {', '.join(KINDS)} (got {kind!r}).")
        if not isinstance(record, dict):
            raise TypeError(f"the record must be a mapping (got {type(record).__name__}).")
        engine = record.get("engine") or {}
        comparator = (record.get("extra") or {}).get("comparator") or {}
        query = (record.get("images") or {}).get("query") or {}
        cells = record.get("cells") or []
        return {
            "logged_at": time.time(),
            "created": record.get("created"),
            "kind": kind,
            "user": user or None,
            "part": part or query.get("name"),
            "product": product or record.get("category"),
            "engine": engine.get("id"),
            "engine_label": engine.get("label"),
            "question": record.get("question"),
            "answer": record.get("answer"),
            "answer_text": record.get("answer_text"),
            "verdict": record.get("verdict"),
            "sensitivity": _number(comparator.get("sensitivity")),
            "max_score": _number(comparator.get("max_score")),
            "cells": record.get("seg") or "",
            "n_cells": len(cells),
            "record_path": str(record_path) if record_path else None,
            "record": json.dumps(record, ensure_ascii=False, default=_plain),
        }

    def prune(self, retention_days: float | None = None) -> int:
        """Delete rows older than ``retention_days`` (default: the log's own; None keeps all); return
        how many went."""
        days = self.retention_days if retention_days is None else retention_days
        self._last_prune = time.monotonic()
        if days is None:
            return 0
        cutoff = time.time() - float(days) * 86400.0
        try:
            with self._connect() as db:
                db.execute("BEGIN IMMEDIATE")
                gone = db.execute("DELETE FROM inspections WHERE logged_at < ?", (cutoff,)).rowcount
                db.execute("COMMIT")
        except (sqlite3.Error, OSError) as err:
            raise _unavailable(err, self.path) from None
        if gone:
            log.info("inspection log %s: %d rows older than %s days pruned", self.path, gone, days)
        return gone

    # ------------------------------------------------------------------------------ reading
    def _read(self, sql: str, args: list[Any]) -> list[tuple]:
        try:
            with self._connect() as db:
                return db.execute(sql, args).fetchall()
        except (sqlite3.Error, OSError) as err:
            raise _unavailable(err, self.path) from None

    def query(
        self,
        *,
        product: str | None = None,
        verdict: str | None = None,
        since: Any = None,
        until: Any = None,
        user: str | None = None,
        kind: str | None = None,
        limit: int | None = DEFAULT_LIMIT,
        offset: int = 0,
    ) -> list[LogRow]:
        """Rows matching every filter given, newest first. ``since``/``until``: seconds since the epoch,
        a datetime, a date (a whole day) or ISO text; ``limit`` None: all."""
        where, args = _where(product, verdict, since, until, user, kind)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM inspections{where} ORDER BY logged_at DESC, id DESC"
        sql += " LIMIT ? OFFSET ?"
        args += [-1 if limit is None else int(limit), int(offset)]
        return [LogRow(*r) for r in self._read(sql, args)]

    def count(self, **filters: Any) -> int:
        where, args = _where(**filters)
        return int(self._read(f"SELECT COUNT(*) FROM inspections{where}", args)[0][0])

    def get(self, row_id: int) -> LogRow | None:
        rows = self._read(f"SELECT {', '.join(_COLUMNS)} FROM inspections WHERE id = ?", [int(row_id)])
        return LogRow(*rows[0]) if rows else None

    def products(self) -> list[str]:
        """Every product with at least one row, sorted."""
        rows = self._read("SELECT DISTINCT product FROM inspections WHERE product IS NOT NULL ORDER BY 1", [])
        return [r[0] for r in rows]

    def export_csv(self, target: str | os.PathLike | IO[str], **filters: Any) -> int:
        """Write the rows matching ``filters`` (as `query`, all of them unless ``limit`` is given) as CSV,
        newest first, with `CSV_COLUMNS`; return the number of rows."""
        filters.setdefault("limit", None)
        rows = self.query(**filters)
        with contextlib.ExitStack() as stack:
            if isinstance(target, str | os.PathLike):
                out = stack.enter_context(open(target, "w", encoding="utf-8", newline=""))
            else:
                out = target
            writer = csv.writer(out)
            writer.writerow(CSV_COLUMNS)
            for row in rows:
                values = {f.name: getattr(row, f.name) for f in fields(row)}
                values["time"] = row.time_text
                writer.writerow([csv_safe(values[c]) for c in CSV_COLUMNS])
        return len(rows)
