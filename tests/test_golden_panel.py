"""Golden samples from the page (judo.app.golden_panel), through the served app and gradio_client: adding
the query grows the gallery and the next inspection's bank (and rebuilds the stored calibration),
duplicates and bad images are refused with nothing written, removing moves the file into .removed/,
read-only sources and missing products are refused, and a visitor who is not the operator is refused
by the server even when calling the endpoints directly."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from judo.comparator.calibration import CALIBRATION_FILE, MIN_NORMALS
from judo.golden import REMOVED_FOLDER, golden_images
from tests.app_server import EXAMPLES, browser_page, inspect_args, serve_config
from tests.test_bad_input import _bomb_png
from tests.test_browser import sync_playwright  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow

PRODUCT = "widget"
QUERY = EXAMPLES / "bottle" / "bottle-contamination-000.png"
NEW_GOOD = EXAMPLES / "bottle" / "bottle-good-000.png"


@pytest.fixture(scope="module")
def golden_app(tmp_path_factory):
    """The app with a writable golden folder (`widget`: three bottle templates) beside the examples."""
    from judo.engines import load_config

    root = tmp_path_factory.mktemp("golden-app")
    folder = root / "golden" / PRODUCT
    folder.mkdir(parents=True)
    for src in sorted((EXAMPLES / "templates" / "bottle").glob("*.png")):
        shutil.copy(src, folder / src.name)
    (root / "app.yaml").write_text(
        "engines:\n"
        "  - {id: comparator, kind: comparator, label: Comparator}\n"
        f"templates: {{golden_dir: '{root / 'golden'}', examples_dir: '{EXAMPLES}'}}\n"
        f"history: {{enabled: true, path: '{root / 'log.sqlite'}'}}\n"
        f"records_dir: '{root / 'records'}'\n"
    )
    with serve_config(load_config(root / "app.yaml", env={})) as served:
        yield {"url": served.url, "folder": folder, "client": Client(served.url, verbose=False)}


def _inspect_bank_size(client: Client, folder: Path) -> int:
    out = client.predict(
        *inspect_args(
            handle_file(str(QUERY)),
            handle_file(str(folder / "00.png")),
            engine="comparator",
            category=PRODUCT,
        ),
        api_name="/inspect",
    )
    result = out[5]
    assert result["done"] and result["error"] is None
    return result["comparator"]["bank_size"]


def _calibration(folder: Path) -> dict:
    return json.loads((folder / CALIBRATION_FILE).read_text(encoding="utf-8"))


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != CALIBRATION_FILE)


def _add(client: Client, image: Path, product: str = PRODUCT) -> tuple[str, list]:
    return client.predict(product=product, image=handle_file(str(image)), api_name="/golden_add")


def test_add_grows_the_gallery_and_the_next_inspections_bank(golden_app):
    client, folder = golden_app["client"], golden_app["folder"]
    assert _inspect_bank_size(client, folder) == 3
    before = _calibration(folder)
    assert before["normals"] == 3

    status, gallery = _add(client, NEW_GOOD)
    assert status.startswith("Added bottle-good-000-") and "4 golden sample(s) now" in status
    assert len(gallery) == 4
    added = [p for p in golden_images(folder) if p.name.startswith("bottle-good-000-")]
    assert len(added) == 1 and added[0].suffix == ".png"
    # The stored calibration was rebuilt at once for the new bank (its key: the pictures' content hashes).
    after = _calibration(folder)
    assert after["normals"] == 4 and after["bank_key"] != before["bank_key"]
    assert added[0].name in after["names"]

    assert _inspect_bank_size(client, folder) == 4

    # The same picture again (under another name too): refused, nothing written.
    files = _files(folder)
    status, gallery = _add(client, NEW_GOOD)
    assert "already a golden sample of widget" in status and status.startswith("**Not changed:**")
    assert _files(folder) == files and len(gallery) == 4


@pytest.mark.parametrize(
    "make",
    [
        lambda d: (d / "broken.png").write_bytes(b"this is not a picture" * 50) and d / "broken.png",
        lambda d: _bomb_png(d / "bomb.png"),
    ],
    ids=["corrupt", "decompression-bomb"],
)
def test_a_bad_image_is_refused_and_nothing_is_written(golden_app, tmp_path, make):
    client, folder = golden_app["client"], golden_app["folder"]
    files = _files(folder)
    status, _gallery = _add(client, make(tmp_path))
    assert status.startswith("**Not changed:** Not added:")
    assert str(tmp_path) not in status and "/tmp" not in status  # no server path in the message
    assert _files(folder) == files and not list(folder.glob(".adding-*"))


def test_remove_moves_the_file_into_removed_and_shrinks_the_gallery(golden_app, caplog):
    client, folder = golden_app["client"], golden_app["folder"]
    count = len(golden_images(folder))
    with caplog.at_level(logging.INFO, logger="judo.app.golden_panel"):
        status, gallery = client.predict(product=PRODUCT, name="01.png", api_name="/golden_remove")
    assert any(
        "golden sample removed from widget by client 127.0.0.1" in r.getMessage()
        and "01.png" in r.getMessage()
        for r in caplog.records
    ), "each change is logged with who and which file"
    assert status.startswith("Removed 01.png from widget") and f"(kept in {REMOVED_FOLDER}/)" in status
    assert len(gallery) == count - 1 and len(golden_images(folder)) == count - 1
    assert (folder / REMOVED_FOLDER / "01.png").is_file() and not (folder / "01.png").exists()
    if count - 1 >= MIN_NORMALS:  # after the add test: the smaller bank's calibration is stored at once
        assert _calibration(folder)["normals"] == count - 1

    status, gallery = client.predict(product=PRODUCT, name="01.png", api_name="/golden_remove")
    assert "is not a golden sample of widget" in status and len(gallery) == count - 1
    status, _ = client.predict(product=PRODUCT, name="../../app.yaml", api_name="/golden_remove")
    assert status.startswith("**Not changed:** Not removed:")
    assert (folder.parents[1] / "app.yaml").is_file()


def test_products_without_a_writable_folder_are_refused(golden_app):
    client = golden_app["client"]
    status, _ = _add(client, NEW_GOOD, product="")
    assert "Choose the product first" in status
    status, _ = _add(client, NEW_GOOD, product="bottle")
    assert "bottle's golden samples come from the shipped examples, which the app does not change" in status
    assert "add a folder named bottle to the golden-sample folder" in status
    status, _ = client.predict(product="bottle", name="00.png", api_name="/golden_remove")
    assert "the shipped examples" in status
    assert (EXAMPLES / "templates" / "bottle" / "00.png").is_file()
    status, _ = _add(client, NEW_GOOD, product="../golden/widget")
    assert "is not one of this app's products" in status


def test_a_visitor_who_is_not_the_operator_is_refused_by_the_server(golden_app):
    folder = golden_app["folder"]
    # Behind a proxy (a forwarded request) the visitor is not on the server itself: not the operator.
    visitor = Client(golden_app["url"], verbose=False, headers={"X-Forwarded-For": "203.0.113.7"})
    files = _files(folder)
    status, gallery = _add(visitor, EXAMPLES / "bottle" / "bottle-contamination-000.png")
    assert status.startswith("**Not changed:** Only the operator may change golden samples")
    assert len(gallery) == len(files)
    status, _ = visitor.predict(product=PRODUCT, name="00.png", api_name="/golden_remove")
    assert "Only the operator" in status
    assert _files(folder) == files


@pytest.mark.browser
def test_the_page_adds_and_removes_with_a_confirmation(golden_app, sync_playwright, tmp_path):  # noqa: F811
    from PIL import Image

    own = tmp_path / "zz-part.png"  # sorts last in the gallery
    Image.open(NEW_GOOD).convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(own)
    folder = golden_app["folder"]
    count = len(golden_images(folder))
    shown = "() => document.querySelectorAll('#judo-gallery img').length"
    status = "() => document.querySelector('#judo-golden-status')?.innerText || ''"
    with browser_page(sync_playwright, golden_app["url"]) as page:
        page.locator("#judo-golden-add").wait_for(state="visible", timeout=30_000)  # on the server itself
        page.locator("#judo-query input[type=file]").set_input_files(str(own))  # a custom product now
        page.wait_for_function(f"() => ({shown})() === 0", timeout=30_000)
        page.locator("#judo-product input").click()
        page.get_by_role("option", name=PRODUCT, exact=True).click()
        add = page.locator("#judo-golden-add")
        page.wait_for_function(
            "() => document.querySelector('#judo-golden-add')?.innerText.includes(\"widget's golden\")",
            timeout=30_000,
        )
        add.click()
        page.wait_for_function(f"() => ({status})().startsWith('Added zz-part-')", timeout=30_000)
        page.wait_for_function(f"() => ({shown})() === {count + 1}", timeout=30_000)
        assert len(golden_images(folder)) == count + 1

        page.locator("#judo-gallery img").last.click()
        page.locator("#judo-golden-remove").click()
        confirm = page.locator("#judo-golden-confirm-text")
        confirm.wait_for(state="visible", timeout=30_000)
        assert "zz-part-" in confirm.inner_text() and REMOVED_FOLDER in confirm.inner_text()
        assert len(golden_images(folder)) == count + 1, "nothing is removed before the confirmation"
        page.locator("#judo-golden-confirm").click()
        page.wait_for_function(f"() => ({status})().startsWith('Removed zz-part-')", timeout=30_000)
        page.wait_for_function(f"() => ({shown})() === {count}", timeout=30_000)
        assert any(p.name.startswith("zz-part-") for p in (folder / REMOVED_FOLDER).iterdir())

        visitor = page.context.browser.new_page(extra_http_headers={"X-Forwarded-For": "203.0.113.7"})
        visitor.goto(golden_app["url"], wait_until="networkidle", timeout=60_000)
        visitor.locator("#judo-gallery").wait_for(timeout=30_000)
        assert not visitor.locator("#judo-golden-add").is_visible(), "a visitor sees no golden controls"


def test_which_folder_a_product_writes_to(tmp_path, mmad_root):
    from judo.app.golden_panel import golden_folder
    from judo.app.library import TemplateLibrary
    from judo.engines.config import TemplateConfig
    from judo.golden import GoldenError, add_golden

    own = tmp_path / "pcb-samples"
    own.mkdir()
    config = TemplateConfig(golden={"pcb": str(own)}, mmad_root=str(mmad_root), examples_dir=None)
    library = TemplateLibrary.from_config(config)
    assert golden_folder(config, library, "pcb") == own  # an explicit product -> folder map
    add_golden(None, "pcb", NEW_GOOD, name="first", folder=own)
    assert [p.parent for p in library.refresh("pcb", own)] == [own]
    mmad_product = next(p for p in library.products() if p != "pcb")
    with pytest.raises(GoldenError) as err:
        golden_folder(config, library, mmad_product)
    assert f"{mmad_product}'s golden samples come from the MMAD dataset" in str(err.value)
    assert "configure a golden-sample folder (templates.golden_dir or JUDO_GOLDEN_DIR)" in str(err.value)
