"""The whole app logs every inspection: single runs, comparisons and batch parts land in its SQLite
inspection log, and the History tab of the same page lists them (gradio_client on the served app)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.app_server import EXAMPLES, compare_args, inspect_args, serve_config

QUERY = EXAMPLES / "bottle" / "bottle-contamination-000.png"
TEMPLATE = EXAMPLES / "templates" / "bottle" / "00.png"


@pytest.fixture(scope="module")
def logged_app(tmp_path_factory):
    from judo.engines import load_config

    folder = tmp_path_factory.mktemp("logged-app")
    db = folder / "log.sqlite"
    (folder / "app.yaml").write_text(
        "engines:\n"
        "  - {id: comparator, kind: comparator, label: Comparator}\n"
        "  - {id: strict, kind: comparator, label: Strict comparator}\n"
        f"templates: {{examples_dir: '{Path(EXAMPLES)}'}}\n"
        f"history: {{enabled: true, path: '{db}'}}\n"
        f"records_dir: '{folder / 'records'}'\n"
    )
    with serve_config(load_config(folder / "app.yaml", env={})) as served:
        yield served.url, db


def _rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT kind, engine, product, verdict FROM inspections ORDER BY id").fetchall()


def test_single_compare_and_batch_inspections_are_logged_and_listed(logged_app):
    from gradio_client import Client, handle_file

    url, db = logged_app
    client = Client(url, verbose=False)
    for _ in range(2):
        client.predict(
            *inspect_args(handle_file(str(QUERY)), handle_file(str(TEMPLATE)), engine="comparator"),
            api_name="/inspect",
        )
    job = client.submit(
        *compare_args(
            handle_file(str(QUERY)), handle_file(str(TEMPLATE)), ["comparator", "strict"], category="bottle"
        ),
        api_name="/compare",
    )
    job.result()
    parts = sorted((EXAMPLES / "bottle").glob("*.png"))[:2]
    client.predict(parts=[handle_file(str(p)) for p in parts], product="bottle", api_name="/batch")

    rows = _rows(db)
    kinds = [r[0] for r in rows]
    assert kinds.count("single") == 2 and kinds.count("compare") == 2 and kinds.count("batch") == len(parts)
    assert {r[1] for r in rows} == {"comparator", "strict"}
    assert all(r[3] in {"defect", "borderline", "normal", "not comparable"} for r in rows)

    listed = client.predict(api_name="/history")
    assert listed[1].startswith(f"{len(rows)} inspections")
    summary, *_ = client.predict(inspection=1, api_name="/history_open")
    assert "Inspection #1" in summary
