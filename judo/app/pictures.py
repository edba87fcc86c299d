"""The pictures a run shows while it streams: the overlay (red cells, amber dashed borderline cells, green
truth) and the visual prior, written once per change as display-size PNG files (see `ShownFiles` for why
files)."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from PIL import Image

from judo.app.owner import OWNERS, new_token
from judo.engines.base import InspectionRequest
from judo.grid import Cell
from judo.render import (
    GREEN,
    fit_within,
    heatmap_overlay,
    outline_edges,
    outline_mask,
    overlay_cells,
    overlay_findings,
)

#: Longest side of the pictures sent to the browser while streaming (downloads keep full size).
DISPLAY_SIDE = 1024


class ShownFiles:
    """The PNG files behind the pictures of one streaming run; removed when the run ends.

    Why files: while an event streams, Gradio diffs each output against its previous value and sends
    only the change, so re-sending an unchanged value costs next to nothing. ``gr.skip()`` is not
    free: Gradio rebuilds the component and its config (a pydantic JSON schema) for each skipped
    output of each update, several ms of server CPU apiece, paid up to ``1 / stream_interval_s``
    times a second while generation competes for the same interpreter. A picture re-sent as the
    same PIL image would be PNG-encoded again; re-sent as the path of the file written when it last
    changed, Gradio only hashes that file. Fast PNG compression: these are display copies.
    """

    def __init__(self, owner: str | None = None) -> None:
        self._dir: str | None = None
        self._count = 0
        self.owner = owner
        self.token = new_token()  # names are claimed for the owner (judo.app.owner): nobody else sees them

    def save(self, img: Image.Image | None, stem: str) -> str | None:
        if img is None:
            return None
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="judo-view-")
        self._count += 1
        name = f"{stem}-{self.token}-{self._count}.png"
        img.save(f"{self._dir}/{name}", format="PNG", compress_level=1)
        OWNERS.claim(name, self.owner)
        return f"{self._dir}/{name}"

    def close(self) -> None:
        """Gradio copies every yielded file into its cache before asking for the next update."""
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


class OverlayPainter:
    """Draws the query with red cells (amber dashed where borderline) and the green truth outline on top,
    at display size.

    The display copy and the outline stencil are computed once; a re-render (only when the cell set
    changes) is one translucent rectangle per run of cells plus one paste. `show` returns the path of
    the current picture, so an unchanged overlay is re-sent as the same value (see `ShownFiles`).
    """

    def __init__(
        self,
        query: Image.Image,
        truth_mask: Any = None,
        files: ShownFiles | None = None,
        stem: str = "overlay",
    ) -> None:
        self.query = query
        self.truth_mask = truth_mask
        self.base = fit_within(query, DISPLAY_SIDE)
        self.edges = outline_edges(self.base.size, truth_mask) if truth_mask is not None else None
        self.files = files or ShownFiles()
        self.stem = stem
        self.cells: frozenset[Cell] | None = None
        self.borderline: frozenset[Cell] = frozenset()
        self.path: str | None = None

    def changed(self, cells: set[Cell]) -> bool:
        return self.cells is None or len(cells) != len(self.cells) or frozenset(cells) != self.cells

    def render(self, cells: set[Cell], borderline: set[Cell] | frozenset[Cell] = frozenset()) -> Image.Image:
        img = overlay_findings(self.base, cells, borderline)
        if self.edges is not None:
            img.paste(GREEN, (0, 0), self.edges)
        return img

    def show(self, cells: set[Cell], borderline: set[Cell] | frozenset[Cell] = frozenset()) -> str:
        """The display picture's file for these cells, drawn and written only when they changed."""
        if self.path is None or self.changed(cells) or frozenset(borderline) != self.borderline:
            self.cells, self.borderline = frozenset(cells), frozenset(borderline)
            self.path = self.files.save(self.render(self.cells, self.borderline), self.stem)
        return self.path

    def full_size(
        self, cells: set[Cell], borderline: set[Cell] | frozenset[Cell] = frozenset()
    ) -> Image.Image:
        img = overlay_findings(self.query, cells, borderline)
        return outline_mask(img, self.truth_mask) if self.truth_mask is not None else img


def prior_heatmap(request: InspectionRequest) -> tuple[Image.Image | None, str | None]:
    """The comparator heat map over the query (display size), or a note why not."""
    try:
        from judo.comparator.compare import compare

        result = compare(request.query, request.template)
    except Exception as err:
        return None, f"Visual prior unavailable: {err}"
    display = fit_within(request.query, DISPLAY_SIDE)
    img = heatmap_overlay(display, result.heatmap, vmax=1.0)
    img = overlay_cells(img, result.cells, color=(255, 255, 255), alpha=0.15)
    note = f"Visual prior: {len(result.cells)} cells differ from the template"
    if result.warnings:
        note += " (" + "; ".join(result.warnings) + ")"
    return img, note
