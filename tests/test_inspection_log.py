"""The inspection log (judo.inspection_log) on real SQLite files: insert, filters, CSV parsed back,
retention, migration, and the ways a log file goes wrong (locked, damaged, read-only, disk full)."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from judo.inspection_log import (
    CSV_COLUMNS,
    PRUNE_EVERY_S,
    SCHEMA_VERSION,
    InspectionLog,
    LogUnavailable,
    problem_sentence,
)
from tests.inspection_records import record_copy, write_record_files


def _add(log: InspectionLog, record: dict | None = None, **kw) -> None:
    kw.setdefault("kind", "single")
    assert log.add_record(record or record_copy(), **kw) is None


def _age(path: Path, row_id: int, days: float) -> None:
    """Move one row's time back by ``days`` (what a row logged that long ago looks like)."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE inspections SET logged_at = logged_at - ? WHERE id = ?", (days * 86400, row_id))


@contextlib.contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make folders/files read-only for this process: chmod for a normal user; for root (whom modes do
    not stop) the immutable attribute, which stops root too."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in paths}
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: no way to make a folder read-only for root")
    done = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"running as root and chattr +i failed ({done.stderr.strip()})")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)


# ------------------------------------------------------------------------------------------ basics
def test_a_record_is_stored_with_its_columns_and_whole_json(tmp_path):
    log = InspectionLog.open(tmp_path / "data" / "inspections.sqlite")
    record = record_copy("bottle: broken large", sensitivity=1.5)
    json_path, png_path = write_record_files(record, tmp_path / "records", "bottle-017-comparator")
    assert (
        log.add_record(record, record_path=json_path, user="ana", part=None, product=None, kind="single")
        is None
    )

    (row,) = log.query()
    assert row == log.get(row.id)
    assert (row.user, row.kind, row.part, row.product) == (
        "ana",
        "single",
        "bottle-broken_large-000.png",
        "bottle",
    )
    assert (row.engine, row.engine_label) == ("comparator", "Comparator")
    assert (row.question, row.answer, row.answer_text) == (record["question"], record["answer"], "Yes.")
    assert row.verdict == record["verdict"] == "defect"
    assert row.sensitivity == 1.5 and row.max_score == record["extra"]["comparator"]["max_score"]
    assert row.cells == record["seg"] and row.n_cells == len(record["cells"]) > 0
    assert row.record == record  # the whole record: a past inspection reopens from the log alone
    assert row.record_path == json_path and row.overlay_path == png_path
    assert abs(row.logged_at - time.time()) < 60 and row.created == record["created"]
    Path(png_path).unlink()  # the app prunes its downloads: the row stays, the overlay is gone
    assert log.get(row.id).overlay_path is None and log.get(row.id).record == record
    assert log.get(row.id + 1) is None


def test_explicit_part_and_product_win_over_the_records(tmp_path):
    log = InspectionLog.open(tmp_path / "log.sqlite")
    _add(log, part="tray3/part-07", product="vial", kind="batch")
    (row,) = log.query()
    assert (row.part, row.product, row.kind) == ("tray3/part-07", "vial", "batch")


def test_bad_input_is_a_sentence_and_writes_nothing(tmp_path):
    log = InspectionLog.open(tmp_path / "log.sqlite")
    problem = log.add_record(record_copy(), kind="sideways")
    assert problem.startswith("This inspection was not written to the inspection log")
    assert "single, compare, batch" in problem and "'sideways'" in problem
    problem = log.add_record(["not", "a", "record"], kind="single")  # type: ignore[arg-type]
    assert "must be a mapping" in problem
    assert log.count() == 0
    with pytest.raises(ValueError, match="retention_days must be above 0"):
        InspectionLog.open(tmp_path / "log.sqlite", retention_days=0)


# ----------------------------------------------------------------------------------------- filters
def test_filters_and_order(tmp_path):
    log = InspectionLog.open(tmp_path / "log.sqlite")
    broken, good, carpet = (
        record_copy("bottle: broken large"),
        record_copy("bottle: good"),
        record_copy("carpet: hole"),
    )
    assert (broken["verdict"], good["verdict"], carpet["category"]) == ("defect", "borderline", "carpet")
    _add(log, broken, user="ana")  # id 1, will be 3 days old
    _add(log, good, user="ben")  # id 2, 1 day old
    _add(log, carpet, user="ana", kind="compare")  # id 3, now
    _age(log.path, 1, 3)
    _age(log.path, 2, 1)

    assert [r.id for r in log.query()] == [3, 2, 1]  # newest first
    assert [r.id for r in log.query(product="bottle")] == [2, 1]
    assert [r.id for r in log.query(verdict="borderline")] == [2]
    assert [r.id for r in log.query(user="ana")] == [3, 1]
    assert [r.id for r in log.query(kind="compare")] == [3]
    assert [r.id for r in log.query(product="bottle", verdict="defect", user="ana")] == [1]
    assert [r.id for r in log.query(limit=1, offset=1)] == [2]
    assert log.query(product="nothing") == [] and log.count(product="bottle") == 2 and log.count() == 3
    assert log.products() == ["bottle", "carpet"]

    today, now = date.today(), datetime.now()
    assert [r.id for r in log.query(since=today)] == [3]  # a date is its whole day
    assert [r.id for r in log.query(until=today - timedelta(days=1))] == [2, 1]
    assert [
        r.id for r in log.query(since=(today - timedelta(days=2)).isoformat(), until=today.isoformat())
    ] == [3, 2]
    assert [r.id for r in log.query(since=now - timedelta(hours=36))] == [3, 2]
    assert [r.id for r in log.query(until=time.time() - 2 * 86400)] == [1]  # seconds since the epoch
    assert log.count(since="", until=None) == 3  # empty filters are no filters
    with pytest.raises(ValueError, match="since must be a date like 2026-01-31"):
        log.query(since="last tuesday")


# --------------------------------------------------------------------------------------------- CSV
def test_export_csv_parses_back_to_the_rows(tmp_path):
    log = InspectionLog.open(tmp_path / "log.sqlite")
    _add(log, record_copy("bottle: broken large"), user="ana", part='=HYPERLINK("http://x","p")')
    _add(log, record_copy("bottle: good"), user="ben, the second", part="bottle/good 01.png")
    _add(log, record_copy("carpet: hole"), user="ana")

    out = tmp_path / "export.csv"
    assert log.export_csv(out, product="bottle") == 2
    with out.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        parsed = list(reader)
    rows = log.query(product="bottle")
    assert [int(p["id"]) for p in parsed] == [r.id for r in rows]
    for p, r in zip(parsed, rows, strict=True):
        assert p["time"] == r.time_text and p["verdict"] == r.verdict and p["cells"] == r.cells
        assert p["question"] == r.question and p["answer_text"] == r.answer_text
        assert float(p["sensitivity"]) == r.sensitivity and int(p["n_cells"]) == r.n_cells
    assert parsed[0]["user"] == "ben, the second" and parsed[0]["part"] == "bottle/good 01.png"
    # a formula stays text in a spreadsheet
    assert parsed[1]["part"] == '\'=HYPERLINK("http://x","p")'

    buf = io.StringIO()
    assert log.export_csv(buf) == 3  # a file object; no filter: every row, not only a page of them
    assert len(list(csv.DictReader(io.StringIO(buf.getvalue())))) == 3


# --------------------------------------------------------------------------------------- retention
def test_retention_prunes_at_open_and_then_at_most_hourly(tmp_path):
    path = tmp_path / "log.sqlite"
    log = InspectionLog.open(path)  # retention None: keep everything
    for _ in range(3):
        _add(log)
    _age(path, 1, 400)
    _age(path, 2, 40)
    assert log.prune() == 0 and log.count() == 3

    log = InspectionLog.open(path, retention_days=365)  # at open
    assert [r.id for r in log.query()] == [3, 2]
    _age(path, 2, 400)
    _add(log)  # pruned less than an hour ago: not yet
    assert log.count() == 3
    log._last_prune -= PRUNE_EVERY_S  # an hour later
    _add(log)
    assert [r.id for r in log.query()] == [5, 4, 3]
    _age(path, 5, 2)
    assert log.prune(retention_days=1) == 1  # an explicit, shorter retention
    assert [r.id for r in log.query()] == [4, 3]


# --------------------------------------------------------------------------------------- migration
def test_migration_from_an_empty_file_and_version_0(tmp_path):
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")  # touched by someone: SQLite's empty database, version 0
    version0 = tmp_path / "v0.sqlite"
    with contextlib.closing(sqlite3.connect(version0)) as db:
        db.execute("PRAGMA user_version = 0")
    for path in (empty, version0):
        log = InspectionLog.open(path)
        _add(log)
        with contextlib.closing(sqlite3.connect(path)) as db:
            assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            indexes = {r[0] for r in db.execute("SELECT sql FROM sqlite_master WHERE type = 'index'")}
            assert any("(logged_at)" in s for s in indexes) and any("(product" in s for s in indexes)
        assert InspectionLog.open(path).count() == 1  # reopening keeps the rows


def test_a_newer_or_foreign_database_is_refused_with_what_to_do(tmp_path):
    newer = tmp_path / "newer.sqlite"
    InspectionLog.open(newer)
    with contextlib.closing(sqlite3.connect(newer)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(LogUnavailable, match="written by a newer version") as err:
        InspectionLog.open(newer)
    assert str(newer) in str(err.value) and str(newer) not in err.value.reason

    foreign = tmp_path / "foreign.sqlite"
    with contextlib.closing(sqlite3.connect(foreign)) as db:
        db.execute("CREATE TABLE invoices (n INTEGER)")
    with pytest.raises(LogUnavailable, match="database of another program .*invoices.*history.path"):
        InspectionLog.open(foreign)


# ---------------------------------------------------------------------------- when the file fails
def test_a_locked_log_gives_a_sentence_soon_and_recovers(tmp_path):
    log = InspectionLog.open(tmp_path / "log.sqlite", busy_timeout_s=0.3)
    holder = sqlite3.connect(log.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        t0 = time.perf_counter()
        problem = log.add_record(record_copy(), kind="single")
        waited = time.perf_counter() - t0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert problem == (
        "This inspection was not written to the inspection log: the log is locked by another program "
        "for too long. The result shown is complete."
    )
    assert 0.25 <= waited < 2.0
    assert log.count() == 0
    _add(log)  # the lock is gone: writing works again
    assert log.count() == 1


def test_a_damaged_file_is_refused_at_open_and_reported_by_add(tmp_path):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(os.urandom(8192))
    with pytest.raises(LogUnavailable) as err:
        InspectionLog.open(garbage)
    message = str(err.value)
    assert str(garbage) in message and "not a usable SQLite database" in message
    assert "move it aside or delete it" in message and "history.path" in message
    assert str(garbage) not in err.value.reason and "not a usable SQLite database" in err.value.reason

    # damaged while the app runs: the insert says so, never raises; the query raises LogUnavailable
    path = tmp_path / "log.sqlite"
    log = InspectionLog.open(path)
    _add(log)
    for side in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        side.unlink(missing_ok=True)
    path.write_bytes(os.urandom(path.stat().st_size))
    problem = log.add_record(record_copy(), kind="batch")
    assert problem is not None and "the log file is damaged" in problem and str(path) not in problem
    with pytest.raises(LogUnavailable, match="not a usable SQLite database"):
        log.query()


def test_a_read_only_folder_is_a_clear_message(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only(folder):
        with pytest.raises(LogUnavailable, match="cannot be created or opened .*make the folder writable"):
            InspectionLog.open(folder / "inspections.sqlite")
        with pytest.raises(LogUnavailable, match="cannot be created .*make the folder writable"):
            InspectionLog.open(folder / "sub" / "inspections.sqlite")  # its folder cannot be made

    # a log that turns read-only while the app runs
    log = InspectionLog.open(folder / "inspections.sqlite")
    _add(log)
    with read_only(folder, log.path):
        problem = log.add_record(record_copy(), kind="single")
    assert problem is not None and problem.startswith("This inspection was not written")
    assert "read-only" in problem or "cannot be opened" in problem, problem
    assert log.count() == 1


def test_a_full_disk_is_named(tmp_path):
    # A real SQLITE_FULL from a database capped at its current size (what a full disk returns).
    with contextlib.closing(sqlite3.connect(tmp_path / "full.sqlite")) as db:
        db.execute("CREATE TABLE t (x BLOB)")
        db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
        with pytest.raises(sqlite3.OperationalError) as err:
            db.execute("INSERT INTO t VALUES (?)", (b"x" * 100_000,))
    assert problem_sentence(err.value) == (
        "This inspection was not written to the inspection log: the server's disk is full. "
        "The result shown is complete."
    )
