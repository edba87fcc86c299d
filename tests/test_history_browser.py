"""A real browser (Debian chromium through playwright) opens the History tab after two inspections
were logged through `InspectionLog.add_record`, sees both listed, and reopens one: its answer, verdict,
cells and overlay come back. A screenshot goes to test-artifacts/."""

from __future__ import annotations

import csv
import io
from urllib.parse import urljoin

import pytest

from judo.inspection_log import InspectionLog
from tests.app_server import browser_page, decoded_image
from tests.inspection_records import record_copy, serve_history, write_record_files
from tests.test_browser import sync_playwright  # noqa: F401 - the playwright fixture

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_history_tab_lists_two_inspections_and_reopens_one(sync_playwright, tmp_path, artifacts_dir):  # noqa: F811
    log = InspectionLog.open(tmp_path / "inspections.sqlite")
    bottle = record_copy("bottle: broken large", sensitivity=1.5)
    json_path, _ = write_record_files(bottle, tmp_path / "records", "bottle-broken-comparator")
    assert log.add_record(bottle, record_path=json_path, user="ana", kind="single") is None
    carpet = record_copy("carpet: hole")
    assert log.add_record(carpet, user="ben", kind="compare") is None

    joins: list[str] = []

    def joined(request) -> None:
        if "/queue/join" in request.url:
            joins.append(request.url)

    with serve_history(log) as url, browser_page(sync_playwright, url, on_request=joined) as page:
        table = page.locator("#judo-history-table")

        def cell(text: str):
            return table.locator("span", has_text=text).locator("visible=true")

        cell("carpet-hole-000.png").first.wait_for(timeout=30_000)
        cell("bottle-broken_large-000.png").first.wait_for(timeout=10_000)
        status = page.locator("#judo-history-status")
        assert "2 inspections, newest first." in status.inner_text()
        settled = len(joins)
        page.wait_for_timeout(1500)
        assert len(joins) == settled, "the list must not keep reloading itself"

        cell("bottle-broken_large-000.png").first.click()
        answer = page.locator("#judo-history-answer")
        page.wait_for_function(
            "() => (document.querySelector('#judo-history-answer')?.innerText || '').includes('Inspection #1')",
            timeout=30_000,
        )
        shown = answer.inner_text()
        assert "Answer: A. Yes." in shown and "defect" in shown and "Sensitivity: 1.5" in shown
        assert page.locator("#judo-history-cells textarea").input_value() == bottle["seg"]
        decoded_image(page, "#judo-history-overlay", width=256)
        assert page.locator("#judo-history-id input").input_value() == "1"

        # the other row: no files on disk, the log alone reopens it
        cell("carpet-hole-000.png").first.click()
        page.wait_for_function(
            "() => (document.querySelector('#judo-history-answer')?.innerText || '').includes('Inspection #2')",
            timeout=30_000,
        )
        assert "no longer on the server" in answer.inner_text()
        assert page.locator("#judo-history-cells textarea").input_value() == carpet["seg"]

        # a filter narrows the list
        page.locator("#judo-history-product input").click()
        page.get_by_role("option", name="carpet").click()
        page.wait_for_function(
            "() => (document.querySelector('#judo-history-status')?.innerText || '').includes('1 inspection,')",
            timeout=30_000,
        )
        assert cell("bottle-broken_large-000.png").count() == 0

        # Export CSV: the filtered rows as a download
        page.locator("#judo-history-export").click()
        link = page.locator("#judo-history-csv a[href]").first
        link.wait_for(timeout=30_000)
        text = page.request.get(urljoin(url, link.get_attribute("href"))).text()
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [(r["id"], r["part"], r["user"]) for r in rows] == [("2", "carpet-hole-000.png", "ben")]
        page.screenshot(path=str(artifacts_dir / "history-tab.png"), full_page=True)
