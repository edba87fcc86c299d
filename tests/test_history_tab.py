"""The History tab (judo.app.history) served for real and driven through gradio_client: the /history
list with filters, /history_open reopening a past inspection, /history_csv, and a tab without a log."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client
from PIL import Image

from judo.app.history import COLUMNS
from judo.inspection_log import InspectionLog, LogUnavailable
from tests.inspection_records import record_copy, serve_history, write_record_files

pytestmark = pytest.mark.slow


def _operator(request) -> bool:
    return request.headers.get("x-judo-operator") == "yes"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("history")
    log = InspectionLog.open(folder / "inspections.sqlite")
    broken = record_copy("bottle: broken large", sensitivity=1.5)
    json_path, png_path = write_record_files(broken, folder / "records", "bottle-broken-comparator")
    assert log.add_record(broken, record_path=json_path, user="ana", kind="single") is None  # 1
    assert log.add_record(record_copy("bottle: good"), user="ben", kind="batch") is None  # 2
    assert log.add_record(record_copy("carpet: hole"), user="ana", kind="compare") is None  # 3
    with serve_history(log, _operator) as url:
        yield {
            "url": url,
            "log": log,
            "record": broken,
            "json": json_path,
            "png": png_path,
            "client": Client(url, verbose=False),
        }


def _ids(listed) -> list[int]:
    table, _status, _products = listed
    assert table["headers"] == COLUMNS
    return [row[0] for row in table["data"]]


def test_history_lists_newest_first_with_filters(served):
    c = served["client"]
    listed = c.predict(api_name="/history")
    assert _ids(listed) == [3, 2, 1] and listed[1] == "3 inspections, newest first."
    assert [v for _label, v in listed[2]["choices"]] == ["", "bottle", "carpet"]
    first = dict(zip(COLUMNS, listed[0]["data"][2], strict=True))
    assert first["Part"] == "bottle-broken_large-000.png" and first["Verdict"] == "defect"
    assert first["Answer"] == "A. Yes." and first["Sensitivity"] == "1.5" and first["User"] == "ana"
    assert first["Cells"] == len(served["record"]["cells"])

    assert _ids(c.predict(product="bottle", api_name="/history")) == [2, 1]
    assert _ids(c.predict(verdict="borderline", api_name="/history")) == [2]
    assert _ids(c.predict(product="bottle", verdict="defect", api_name="/history")) == [1]
    assert _ids(c.predict(since="2000-01-01", until="2000-12-31", api_name="/history")) == []
    assert _ids(c.predict(since=date.today().isoformat(), api_name="/history")) == [3, 2, 1]
    none = c.predict(product="hazelnut", api_name="/history")
    assert none[1] == "No inspection matches these filters."
    bad = c.predict(since="yesterday-ish", api_name="/history")
    assert bad[1].startswith("**Filter:** since must be a date like 2026-01-31")


def test_history_open_reopens_a_past_inspection(served):
    c, record = served["client"], served["record"]
    summary, cells, overlay, shown = c.predict(inspection=1, api_name="/history_open")
    assert "Inspection #1: defect" in summary and "**Answer:** A. Yes." in summary
    assert "**Sensitivity:** 1.5" in summary
    assert cells == record["seg"] and shown == record
    # the overlay as written next to the record, pixel for pixel
    assert np.array_equal(
        np.asarray(Image.open(overlay).convert("RGB")), np.asarray(Image.open(served["png"]))
    )
    assert served["json"] not in summary  # server paths are for the operator only
    op = Client(served["url"], verbose=False, headers={"x-judo-operator": "yes"})
    assert served["json"] in op.predict(inspection=1, api_name="/history_open")[0]

    summary, cells, overlay, shown = c.predict(inspection=2, api_name="/history_open")
    assert "no longer on the server" in summary and overlay is None  # no files: the log alone reopens it
    assert shown["verdict"] == "borderline" and cells == (shown["seg"] or "no cells")
    summary, *_ = c.predict(inspection=99, api_name="/history_open")
    assert summary == "No inspection #99 in the log (pruned, or never logged)."


def test_history_csv_exports_the_filtered_rows(served):
    path = served["client"].predict(product="bottle", api_name="/history_csv")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["id"]) for r in rows] == [2, 1]
    assert rows[1]["record_path"] == served["json"] and rows[1]["sensitivity"] == "1.5"
    assert Path(path).name.startswith("inspections-") and path.endswith(".csv")


def test_a_tab_without_a_log_says_why(tmp_path):
    garbage = tmp_path / "inspections.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LogUnavailable) as err:
        InspectionLog.open(garbage)
    with serve_history(None, _operator, unavailable=err.value) as url:
        table, status, _ = Client(url, verbose=False).predict(api_name="/history")
        assert table["data"] == []
        assert "not a usable SQLite database" in status and str(garbage) not in status
        op = Client(url, verbose=False, headers={"x-judo-operator": "yes"})
        assert str(garbage) in op.predict(api_name="/history")[1]
        assert "not a usable" in op.predict(inspection=1, api_name="/history_open")[0]
    with serve_history(None) as url:  # switched off
        status = Client(url, verbose=False).predict(api_name="/history")[1]
        assert status.startswith("The inspection log is off: it is switched off in the app's settings")
