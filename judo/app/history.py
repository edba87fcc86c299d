"""The History tab: the inspection log (`judo.inspection_log`) listed, filtered, reopened and exported.

Everyone who can reach the app sees the log: it is a lab's shared record (on a public Space the log
is off by default). With a login configured (``per_user``) each row names its user and the list
shows the signed-in user's own inspections ("Mine only", on by default); an operator may switch it off
to see everyone's. The endpoints apply the same rule on the server, whatever a caller sends. Server
paths (the record's file) are shown to the operator only, as in the Engines tab. The list is an API endpoint (``/history``, with the filters as parameters), and so is
reopening one inspection (``/history_open``) and the CSV export (``/history_csv``).

Handlers take their inputs as a set of components (a dict by component) and return dicts, so the
layout can move without keeping tuples in step.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from PIL import Image

from judo.app.downloads import prune_folders
from judo.inspection_log import InspectionLog, LogRow, LogUnavailable
from judo.record import VERDICTS

log = logging.getLogger(__name__)

#: Rows the table shows at most (newest first); the CSV export has every matching row.
TABLE_ROWS = 200
COLUMNS = [
    "#",
    "Time",
    "Part",
    "Product",
    "Engine",
    "Verdict",
    "Answer",
    "Sensitivity",
    "Cells",
    "User",
    "Kind",
]
ALL_PRODUCTS = ("All products", "")
ALL_VERDICTS = ("All verdicts", "")
#: Where CSV exports are written for download (each in its own folder, removed after an hour).
EXPORT_DIR = Path(tempfile.gettempdir()) / "judo-history"
KEEP_EXPORTS_S = 3600.0
OFF = (
    "The inspection log is off: it is switched off in the app's settings (`history.enabled`), or this "
    "is a public Space, where it is off unless the operator switches it on."
)


@dataclass
class HistoryTab:
    """The tab's components, for the app to wire to (e.g. refresh the table after an inspection)."""

    tab: gr.Tab
    status: gr.Markdown
    mine: gr.Checkbox  # shown only with a login configured
    product: gr.Dropdown
    verdict: gr.Dropdown
    since: gr.DateTime
    until: gr.DateTime
    refresh: gr.Button
    table: gr.Dataframe
    export: gr.Button
    csv_file: gr.File
    row_id: gr.Number
    summary: gr.Markdown
    cells: gr.Textbox
    overlay: gr.Image
    record: gr.JSON


def _answer(row: LogRow) -> str:
    if row.answer:
        return f"{row.answer}. {row.answer_text}" if row.answer_text else row.answer
    return "no answer"


def table_frame(rows: list[LogRow]) -> pd.DataFrame:
    """The table's rows, newest first as given."""
    data = [
        [
            r.id,
            r.time_text,
            r.part or "",
            r.product or "",
            r.engine_label or r.engine or "",
            r.verdict or "",
            _answer(r),
            "" if r.sensitivity is None else f"{r.sensitivity:g}",
            r.n_cells,
            r.user or "",
            r.kind,
        ]
        for r in rows
    ]
    return pd.DataFrame(data, columns=COLUMNS)


def _summary(row: LogRow, operator: bool) -> str:
    lines = [
        f"### Inspection #{row.id}: {row.verdict or 'no verdict'}",
        f"**Answer:** {_answer(row)}",
        f"**Question:** {row.question or ''}",
        f"**Part:** {row.part or 'unnamed'} · **Product:** {row.product or 'none'} · "
        f"**Engine:** {row.engine_label or row.engine or '?'} · **Kind:** {row.kind}",
        f"**When:** {row.time_text}" + (f" · **User:** {row.user}" if row.user else ""),
    ]
    if row.sensitivity is not None:
        lines.append(f"**Sensitivity:** {row.sensitivity:g} (strongest score {row.max_score})")
    error = row.record.get("error")
    if error:
        lines.append(f"**Error:** {error}")
    if row.overlay_path is None:
        lines.append(
            "*The overlay is no longer on the server (downloads are kept for an hour); the cells below are.*"
        )
    if operator and row.record_path:
        lines.append(f"**Record file:** `{row.record_path}`")
    return "\n\n".join(lines)


def build_history_tab(
    log: InspectionLog | None,
    is_operator: Callable[[gr.Request], bool] | None = None,
    *,
    unavailable: LogUnavailable | None = None,
    label: str = "History",
    per_user: bool = False,
) -> HistoryTab:
    """The History tab, built inside an open `gr.Blocks`. ``log`` None: the tab says why (the reason
    of ``unavailable`` when the log could not be opened: with the file's path for the operator).
    ``per_user``: a login is configured, so every request names its user (see the module docstring)."""

    def operator(request: gr.Request | None) -> bool:
        if is_operator is None or request is None:
            return False
        try:
            return bool(is_operator(request))
        except Exception:  # noqa: BLE001 - a request that cannot be judged shows no server details
            return False

    def off_message(request: gr.Request | None) -> str:
        if unavailable is None:
            return OFF
        return str(unavailable) if operator(request) else unavailable.reason

    with gr.Tab(label, id="history", elem_id="judo-history-tab") as tab:
        status = gr.Markdown(OFF if log is None else "", label="status", elem_id="judo-history-status")
        with gr.Row(equal_height=True):
            mine_box = gr.Checkbox(
                True,
                label="Mine only",
                visible=per_user,
                scale=0,
                min_width=110,
                elem_id="judo-history-mine",
            )
            product_box = gr.Dropdown(
                [ALL_PRODUCTS],
                value="",
                label="Product",
                allow_custom_value=True,
                elem_id="judo-history-product",
            )
            verdict_box = gr.Dropdown(
                [ALL_VERDICTS, *((v, v) for v in VERDICTS)],
                value="",
                label="Verdict",
                elem_id="judo-history-verdict",
            )
            since_box = gr.DateTime(
                None, include_time=False, type="string", label="From (date)", elem_id="judo-history-since"
            )
            until_box = gr.DateTime(
                None, include_time=False, type="string", label="To (date)", elem_id="judo-history-until"
            )
            with gr.Column(scale=0, min_width=140):
                refresh = gr.Button("Refresh", size="sm", elem_id="judo-history-refresh")
                export = gr.Button("Export CSV", size="sm", elem_id="judo-history-export")
        table = gr.Dataframe(
            table_frame([]),
            headers=COLUMNS,
            interactive=False,
            wrap=True,
            label="Inspections, newest first (select a row to reopen it)",
            elem_id="judo-history-table",
        )
        csv_file = gr.File(label="CSV export", interactive=False, visible=False, elem_id="judo-history-csv")
        with gr.Row():
            with gr.Column(scale=3):
                row_id = gr.Number(None, label="Inspection #", precision=0, elem_id="judo-history-id")
                summary = gr.Markdown(label="summary", elem_id="judo-history-answer")
                cells = gr.Textbox(label="Cells", lines=2, interactive=False, elem_id="judo-history-cells")
            with gr.Column(scale=2):
                overlay = gr.Image(
                    label="Overlay",
                    type="pil",
                    format="png",
                    interactive=False,
                    elem_id="judo-history-overlay",
                )
        with gr.Accordion("The whole record (JSON)", open=False):
            record = gr.JSON(label="Record", elem_id="judo-history-record")

    filters = {
        "product": product_box,
        "verdict": verdict_box,
        "since": since_box,
        "until": until_box,
        "mine_only": mine_box,
    }

    def _filters(
        product: str | None, verdict: str | None, since: str | None, until: str | None
    ) -> dict[str, Any]:
        return {"product": product or None, "verdict": verdict or None, "since": since, "until": until}

    def _user(request: gr.Request | None, mine_only: Any) -> dict[str, Any]:
        """The user filter: none without a login; with one, the requester's own rows unless an operator
        asks for everyone's (a request without a user name sees no row)."""
        if not per_user:
            return {}
        everyone = mine_only is False or str(mine_only).strip().lower() in {"false", "0", "no"}
        if everyone and operator(request):
            return {}
        return {"user": getattr(request, "username", None) or "\0nobody"}

    def list_rows(
        request: gr.Request,
        product: str | None = "",
        verdict: str | None = "",
        since: str | None = None,
        until: str | None = None,
        mine_only: bool = True,
    ) -> dict[Any, Any]:
        """The newest matching inspections (at most TABLE_ROWS), with a line saying how many there are.
        ``since``/``until``: dates (2026-01-31, whole days) or times (2026-01-31 14:30:00). ``mine_only``
        (with a login): the signed-in user's own inspections; off shows everyone's to an operator."""
        if log is None:
            return {table: table_frame([]), status: off_message(request), product_box: gr.skip()}
        try:
            wanted = _filters(product, verdict, since, until)
            whose = _user(request, mine_only)
            rows = log.query(**wanted, **whose, limit=TABLE_ROWS)
            total = log.count(**wanted, **whose)
            products = log.products()
        except ValueError as err:
            return {table: gr.skip(), status: f"**Filter:** {err}", product_box: gr.skip()}
        except LogUnavailable as err:
            message = str(err) if operator(request) else err.reason
            return {table: table_frame([]), status: message, product_box: gr.skip()}
        if not total:
            line = (
                "No inspection matches these filters."
                if any(wanted.values())
                else "No inspection logged yet."
            )
        elif total > len(rows):
            line = f"Showing the newest {len(rows)} of {total} inspections; Export CSV has all of them."
        else:
            line = f"{total} inspection{'s' if total != 1 else ''}, newest first."
        if whose:
            line = f"Mine only ({getattr(request, 'username', None) or 'no user'}): {line}"
        choices = [ALL_PRODUCTS, *((p, p) for p in products)]
        if wanted["product"] and wanted["product"] not in products:
            choices.append((wanted["product"], wanted["product"]))
        return {table: table_frame(rows), status: line, product_box: gr.update(choices=choices)}

    def _opened(row_number: Any, request: gr.Request | None) -> dict[Any, Any]:
        empty = {summary: "", cells: "", overlay: None, record: None}
        if log is None:
            return {**empty, summary: off_message(request)}
        try:
            row = log.get(int(row_number)) if row_number not in (None, "") else None
        except (TypeError, ValueError):
            row = None
        except LogUnavailable as err:
            return {**empty, summary: str(err) if operator(request) else err.reason}
        if row is not None and per_user and not operator(request):
            row = row if row.user == getattr(request, "username", None) else None  # only one's own
        if row is None:
            return {**empty, summary: f"No inspection #{row_number} in the log (pruned, or never logged)."}
        picture = None
        if row.overlay_path:
            try:
                with Image.open(row.overlay_path) as im:
                    picture = im.convert("RGB")
            except OSError:
                picture = None  # pruned between the check and the read
        return {
            summary: _summary(row, operator(request)),
            cells: row.cells or "no cells",
            overlay: picture,
            record: row.record,
        }

    def open_row(request: gr.Request, inspection: float | None = None) -> dict[Any, Any]:
        """One past inspection by its number: answer, verdict, cells, overlay (while on disk), record."""
        return _opened(inspection, request)

    def select_row(evt: gr.SelectData, request: gr.Request) -> dict[Any, Any]:
        values = evt.row_value or []
        if not values:
            return {
                row_id: gr.skip(),
                summary: gr.skip(),
                cells: gr.skip(),
                overlay: gr.skip(),
                record: gr.skip(),
            }
        return {row_id: values[0], **_opened(values[0], request)}

    def export_csv(
        request: gr.Request,
        product: str | None = "",
        verdict: str | None = "",
        since: str | None = None,
        until: str | None = None,
        mine_only: bool = True,
    ) -> dict[Any, Any]:
        """Every inspection matching the filters as a CSV file (``mine_only`` as in the list)."""
        if log is None:
            gr.Warning(off_message(request))
            return {csv_file: None}
        try:
            EXPORT_DIR.mkdir(parents=True, exist_ok=True)
            prune_folders(EXPORT_DIR, KEEP_EXPORTS_S, "export-*")
            out = Path(tempfile.mkdtemp(prefix="export-", dir=EXPORT_DIR))
            path = out / f"inspections-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}.csv"
            count = log.export_csv(
                path, **_filters(product, verdict, since, until), **_user(request, mine_only)
            )
        except ValueError as err:
            gr.Warning(str(err))
            return {csv_file: None}
        except LogUnavailable as err:
            gr.Warning(str(err) if operator(request) else err.reason)
            return {csv_file: None}
        except OSError as err:
            gr.Warning(f"The CSV could not be written on the server ({err.strerror or type(err).__name__}).")
            return {csv_file: None}
        gr.Info(f"{count} inspection{'s' if count != 1 else ''} exported.")
        return {csv_file: str(path)}

    # Inputs by name (keyword arguments: the API's parameters are named after them), outputs as dicts.
    listed = [table, status, product_box]
    opened = [summary, cells, overlay, record]
    # On page load and whenever a filter changes: the one public endpoint for listing.
    gr.on(None, list_rows, inputs_kwargs=filters, outputs=listed, api_name="history", show_progress="minimal")
    gr.on(
        [refresh.click, tab.select],
        list_rows,
        inputs_kwargs=filters,
        outputs=listed,
        api_visibility="private",
    )
    table.select(select_row, outputs=[row_id, *opened], api_visibility="private")
    row_id.submit(open_row, inputs_kwargs={"inspection": row_id}, outputs=opened, api_name="history_open")
    export.click(export_csv, inputs_kwargs=filters, outputs=[csv_file], api_name="history_csv").then(
        lambda: {csv_file: gr.update(visible=True)}, outputs=[csv_file], api_visibility="private"
    )
    return HistoryTab(
        tab=tab,
        status=status,
        mine=mine_box,
        product=product_box,
        verdict=verdict_box,
        since=since_box,
        until=until_box,
        refresh=refresh,
        table=table,
        export=export,
        csv_file=csv_file,
        row_id=row_id,
        summary=summary,
        cells=cells,
        overlay=overlay,
        record=record,
    )
