"""Golden samples from the page: add the query to the product's golden samples, remove the selected one.

Why on the page: a lab's bank grows with its parts (a new batch of good parts, a new supplier), and the
inspector who has just looked at a good part is the one who knows it belongs in the bank. The files
themselves are `judo.golden`'s business (atomic content-hash names, duplicates skipped, removal into
``.removed/``); here is who may ask for it, which folder a product writes to, and what the page shows
afterwards: the library (`judo.app.library.TemplateLibrary.refresh`), the gallery, and the bank's
stored calibration (`judo.app.bank.refresh_calibration`), so the next inspection uses the new bank.

Only an operator (`judo.app.owner.is_operator`: a login is configured, or the page is opened on the
server itself) sees the controls, and both endpoints (``/golden_add``, ``/golden_remove``) check it
again on the server, so a visitor calling them directly is refused too. Only a product with a writable
folder of its own (``templates.golden_dir``/<product>, or ``templates.golden``) can change: the MMAD
dataset and the shipped examples are read-only sources.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from judo.app.bank import refresh_calibration
from judo.app.inputs import hide_paths
from judo.app.library import TemplateLibrary
from judo.app.owner import is_operator
from judo.engines.config import TemplateConfig
from judo.golden import REMOVED_FOLDER, GoldenError, add_golden, product_folder, remove_golden

log = logging.getLogger(__name__)

NOT_OPERATOR = (
    "Only the operator may change golden samples: sign in (where a login is configured) or open the app "
    "on the server itself."
)
NO_PRODUCT = (
    "Choose the product first: the query is added to that product's golden samples (an own upload "
    "starts as a custom product, which has none)."
)


@dataclass
class GoldenControls:
    """The controls under the gallery (hidden until the page knows the visitor is the operator)."""

    box: gr.Column
    add: gr.Button
    remove: gr.Button
    selected: gr.Textbox  # the file name of the gallery picture picked last (operator only)
    confirm_row: gr.Row
    confirm_text: gr.Markdown
    confirm: gr.Button
    cancel: gr.Button
    status: gr.Markdown


def add_label(product: str | None) -> str:
    return (
        f"Add the query to {product}'s golden samples" if product else "Add the query to the golden samples"
    )


def golden_folder(templates: TemplateConfig, library: TemplateLibrary, product: str | None) -> Path:
    """The writable folder of `product`'s golden samples, or `GoldenError` saying why there is none."""
    if not product:
        raise GoldenError(NO_PRODUCT)
    folder: Path | None = None
    if product in (templates.golden or {}):
        folder = Path(templates.golden[product])
    elif templates.golden_dir:
        try:
            candidate = product_folder(templates.golden_dir, product)  # a plain folder name, never a path
        except GoldenError:
            candidate = None
        folder = candidate if candidate is not None and candidate.is_dir() else None
    if folder is None:
        raise GoldenError(_no_folder(templates, library, product))
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise GoldenError(
            f"{product}'s golden-sample folder is read-only on this server: the app cannot add or remove "
            "samples there (ask the administrator to make it writable)."
        )
    return folder


def _no_folder(templates: TemplateConfig, library: TemplateLibrary, product: str) -> str:
    if product not in library.products():
        return f"{product!r} is not one of this app's products: pick one from the list."
    paths = library.templates_for(product)
    sources = []
    if templates.mmad_root and any(_under(p, templates.mmad_root) for p in paths):
        sources.append("the MMAD dataset")
    if templates.examples_dir and any(_under(p, templates.examples_dir) for p in paths):
        sources.append("the shipped examples")
    source = " and ".join(sources) or "a read-only source"
    where = (
        f"add a folder named {product} to the golden-sample folder (templates.golden_dir)"
        if templates.golden_dir
        else "configure a golden-sample folder (templates.golden_dir or JUDO_GOLDEN_DIR) with a folder "
        f"named {product} in it"
    )
    return (
        f"{product}'s golden samples come from {source}, which the app does not change: to keep the lab's "
        f"own samples of {product}, {where}."
    )


def _under(path: Path, root: str) -> bool:
    try:
        return Path(path).resolve().is_relative_to(Path(root).resolve())
    except OSError:
        return False


def _who(request: gr.Request | None) -> str:
    user = getattr(request, "username", None)
    client = getattr(getattr(request, "client", None), "host", None)
    return f"user {user}" if user else f"client {client or 'unknown'}"


def _path_of(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("path") or value.get("name")
    return value


def golden_controls(state: Any, product: gr.Dropdown, gallery: gr.Gallery, query: gr.Image) -> GoldenControls:
    """The controls, built under the gallery inside an open `gr.Blocks`, with their events.

    ``state`` is the app's `judo.app.state.AppState` (its config and its template library, which a change
    refreshes in place: the runner and the Batch tab read the same library)."""
    library: TemplateLibrary = state.library
    templates: TemplateConfig = state.config.templates
    auth = bool(state.config.auth)

    with gr.Column(visible=False, elem_id="judo-golden-controls") as box:
        with gr.Row():
            add = gr.Button(add_label(None), size="sm", elem_id="judo-golden-add")
            remove = gr.Button("Remove the selected golden sample", size="sm", elem_id="judo-golden-remove")
        selected = gr.Textbox(visible="hidden", elem_id="judo-golden-selected")
        with gr.Row(visible=False, elem_id="judo-golden-confirm-row") as confirm_row:
            confirm_text = gr.Markdown(elem_id="judo-golden-confirm-text")
            confirm = gr.Button("Yes, remove it", size="sm", variant="stop", elem_id="judo-golden-confirm")
            cancel = gr.Button("Cancel", size="sm", elem_id="judo-golden-cancel")
        status = gr.Markdown(elem_id="judo-golden-status")
    c = GoldenControls(box, add, remove, selected, confirm_row, confirm_text, confirm, cancel, status)

    def refused(message: str, product_name: str | None) -> dict[Any, Any]:
        """The refusal, and the product's gallery as it stands (an API caller gets the list either way)."""
        gr.Warning(message)
        return {status: f"**Not changed:** {message}", gallery: _gallery(product_name)}

    def _gallery(product_name: Any) -> list[str]:
        return [
            str(p) for p in library.templates_for(product_name if isinstance(product_name, str) else None)
        ]

    def show(request: gr.Request) -> dict[Any, Any]:
        return {box: gr.Column(visible=is_operator(request, auth))}

    def product_changed(product_name: str | None) -> dict[Any, Any]:
        return {
            add: gr.Button(value=add_label(product_name)),
            selected: "",
            confirm_row: gr.Row(visible=False),
        }

    def pick(values: dict, evt: gr.SelectData, request: gr.Request) -> dict[Any, Any]:
        paths = library.templates_for(values[product])
        if not is_operator(request, auth) or evt.index is None or not 0 <= int(evt.index) < len(paths):
            return {selected: gr.skip(), confirm_row: gr.skip()}
        return {selected: paths[int(evt.index)].name, confirm_row: gr.Row(visible=False)}

    def ask_remove(values: dict, request: gr.Request) -> dict[Any, Any]:
        name, product_name = values[selected], values[product]
        if not is_operator(request, auth):
            return {
                status: f"**Not changed:** {NOT_OPERATOR}",
                confirm_row: gr.skip(),
                confirm_text: gr.skip(),
            }
        if not name:
            return {
                status: "Select a golden sample in the gallery first, then remove it.",
                confirm_row: gr.Row(visible=False),
                confirm_text: gr.skip(),
            }
        return {
            status: "",
            confirm_text: f"Remove **{name}** from {product_name or 'the product'}'s golden samples? It is "
            f"moved into the folder's `{REMOVED_FOLDER}/`, from where it can be put back by hand.",
            confirm_row: gr.Row(visible=True),
        }

    def add_sample(request: gr.Request, product: str | None = "", image: Any = None) -> dict[Any, Any]:
        """Add the query image to the product's golden samples (operator only). Returns the status line and
        the product's gallery; the next inspection of the product uses the new bank."""
        if not is_operator(request, auth):
            return refused(NOT_OPERATOR, product)
        try:
            folder = golden_folder(templates, library, product)
            if image in (None, ""):
                raise GoldenError("No query image: upload one (or pick an example) first.")
            source = _path_of(image)
            name = Path(source).stem if isinstance(source, (str, os.PathLike)) else None
            change = add_golden(None, product, source, name=name, folder=folder)
        except GoldenError as err:
            return refused(hide_paths(str(err)), product)
        if not change.changed:
            return refused(f"Not added: {change.message}", product)
        gallery_paths = library.refresh(product, folder)
        refresh_calibration(gallery_paths)
        log.info("golden sample added to %s by %s: %s", product, _who(request), change.path)
        gr.Info(change.message)
        return {status: change.message, gallery: _gallery(product)}

    def remove_sample(request: gr.Request, product: str | None = "", name: str | None = "") -> dict[Any, Any]:
        """Move one golden sample (its file name, as the gallery lists it) of the product into the folder's
        .removed/ (operator only). Returns the status line and the product's gallery."""
        if not is_operator(request, auth):
            return refused(NOT_OPERATOR, product)
        if not name:
            return refused("Select a golden sample in the gallery first, then remove it.", product)
        try:
            folder = golden_folder(templates, library, product)
            change = remove_golden(None, product, name, folder=folder)
        except GoldenError as err:
            return refused(hide_paths(str(err)), product)
        gallery_paths = library.refresh(product, folder)
        refresh_calibration(gallery_paths)
        log.info("golden sample removed from %s by %s: %s", product, _who(request), change.path)
        gr.Info(change.message)
        return {status: change.message, gallery: _gallery(product)}

    private = {"api_visibility": "private", "queue": False}
    gr.on(None, show, outputs=[box], **private)
    product.change(product_changed, inputs=[product], outputs=[add, selected, confirm_row], **private)
    gallery.select(pick, inputs={product}, outputs=[selected, confirm_row], **private)
    remove.click(
        ask_remove, inputs={selected, product}, outputs=[status, confirm_row, confirm_text], **private
    )
    cancel.click(lambda: {confirm_row: gr.Row(visible=False)}, outputs=[confirm_row], **private)
    # One change at a time: a calibration after the change takes a moment, and two adds must not race it.
    once = {"concurrency_id": "golden", "concurrency_limit": 1}
    add.click(
        add_sample,
        inputs_kwargs={"product": product, "image": query},
        outputs=[status, gallery],
        api_name="golden_add",
        **once,
    )
    confirm.click(
        remove_sample,
        inputs_kwargs={"product": product, "name": selected},
        outputs=[status, gallery],
        api_name="golden_remove",
        **once,
    ).then(
        lambda: {confirm_row: gr.Row(visible=False), selected: ""}, outputs=[confirm_row, selected], **private
    )
    return c
