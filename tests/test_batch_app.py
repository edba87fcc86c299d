"""The Batch tab, served for real on a port: gradio_client calls /batch; a real browser (playwright +
Debian chromium) uploads a tray of 6 parts, waits for the finished table and opens the downloaded
HTML report, checking its rows and embedded overlays."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from judo.app.batch import UPLOADED, batch_demo
from judo.batch.tray import make_tray
from judo.engines.comparator import ComparatorEngine
from tests.app_server import browser_page, serve_blocks
from tests.test_browser import sync_playwright  # noqa: F401 - the fixture (skips without a browser)

pytestmark = pytest.mark.slow
PARTS = 6


@pytest.fixture(scope="module")
def tray(tmp_path_factory):
    return make_tray(tmp_path_factory.mktemp("tray"), PARTS, golden=3, size=256, seed=4)


@pytest.fixture(scope="module")
def served(tray, tmp_path_factory):
    demo = batch_demo([ComparatorEngine()], {"bottle": tray.golden}, tmp_path_factory.mktemp("records"))
    with serve_blocks(demo) as served:
        yield served.url


def test_client_calls_the_batch_endpoint_and_gets_every_part(served, tray, tmp_path) -> None:
    from gradio_client import Client, handle_file

    client = Client(served, verbose=False)
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(tray.parts[0], "zipped/first.png")
        zf.writestr("../evil.png", tray.parts[1].read_bytes())
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    files = [*tray.parts[:3], archive, broken]
    progress, table, downloads = client.predict(
        parts=[handle_file(str(p)) for p in files], product="bottle", api_name="/batch"
    )
    rows = {row[0]: row for row in table["data"]}
    assert table["headers"][:3] == ["part", "verdict", "strongest score"]
    assert set(rows) == {
        "part-000.png",
        "part-001.png",
        "part-002.png",
        "zipped/first.png",
        "broken.png",
        "../evil.png",
    }
    assert (
        rows["zipped/first.png"][1:4] == rows["part-000.png"][1:4]
    )  # the same picture, the same measurement
    assert rows["broken.png"][1] == "skipped" and rows["../evil.png"][1] == "skipped"
    assert "leaves the archive" in rows["../evil.png"][6]
    assert 'value="5"' in progress and "finished" in progress  # 5 readable-looking files
    assert "1 file left out" in progress  # ../evil.png, refused before the run
    names = sorted(Path(d).name for d in downloads)
    assert [re.sub(r"batch-\d{8}-\d{6}-", "", n) for n in names] == [
        "records.json",
        "report.html",
        "results.csv",
    ]
    report = Path(next(d for d in downloads if d.endswith("report.html"))).read_text(encoding="utf-8")
    assert report.count('<img src="data:image/jpeg;base64,') == 4

    # uploaded golden samples instead of a product's; and the same tray again resumes (no new work)
    again = client.predict(
        parts=[handle_file(str(p)) for p in tray.parts[:3]],
        product=UPLOADED,
        golden=[handle_file(str(p)) for p in tray.golden],
        api_name="/batch",
    )
    assert [r[1] for r in again[1]["data"]] == [rows[f"part-00{i}.png"][1] for i in range(3)]


def test_client_gets_a_clear_error_for_a_batch_without_parts_or_golden_samples(served, tray) -> None:
    from gradio_client import Client, handle_file

    client = Client(served, verbose=False)
    with pytest.raises(Exception, match="Add the parts"):
        client.predict(parts=[], api_name="/batch")
    with pytest.raises(Exception, match="No golden samples"):
        client.predict(parts=[handle_file(str(tray.parts[0]))], product=UPLOADED, api_name="/batch")
    for bad in ("abc", -1, 1e9):
        with pytest.raises(Exception, match="The sensitivity must be a number above 0"):
            client.predict(
                parts=[handle_file(str(tray.parts[0]))], product="bottle", sensitivity=bad, api_name="/batch"
            )


@pytest.mark.browser
def test_browser_runs_a_tray_of_six_and_the_report_opens(
    sync_playwright,  # noqa: F811 - the fixture imported above
    served,
    tray,
    tmp_path,
    artifacts_dir,
):
    with browser_page(sync_playwright, served, accept_downloads=True) as page:
        page.locator("#batch-parts input[type=file]").set_input_files([str(p) for p in tray.parts])
        page.get_by_text("part-005").first.wait_for(timeout=30_000)  # the upload is listed
        page.locator("#batch-run").click()
        page.wait_for_function(
            "() => (document.querySelector('#batch-progress')?.innerText || '').includes('finished')",
            timeout=60_000,
        )
        assert f"{PARTS} / {PARTS} parts" in page.locator("#batch-progress").inner_text()
        body = page.locator("#batch-table").inner_text()
        assert all(f"part-00{i}.png" in body for i in range(PARTS))
        page.wait_for_function(  # the thumbnails follow the run (not an output of /batch)
            f"() => document.querySelectorAll('#batch-gallery img').length >= {PARTS}", timeout=20_000
        )
        link = page.locator('#batch-downloads a[href*="report.html"]').first
        link.wait_for(timeout=10_000)
        with page.expect_download() as info:
            link.click()
        saved = tmp_path / "report.html"
        info.value.save_as(saved)
        page.screenshot(path=str(artifacts_dir / "batch-tab.png"), full_page=True)

        report = page.context.browser.new_page()
        report.route(re.compile(r"^https?://"), lambda route: route.abort())  # offline: nothing is fetched
        report.goto(saved.as_uri())
        assert report.locator("#results tbody tr").count() == PARTS
        images = report.locator("#results img")
        assert images.count() == PARTS
        assert report.evaluate("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
        assert report.locator("#summary").inner_text().startswith(f"{PARTS} parts: ")
