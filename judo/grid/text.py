"""The seg text: ``<seg> (11,12)-(11,14), (12,11) </seg>``, written canonically and read leniently,
strictly (the grammar a reward checks) or while it streams in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from judo.grid.cells import GRID_SIZE, Cell, check_cell

SEG_OPEN = "<seg>"
SEG_CLOSE = "</seg>"

# Dashes models and the paper write between the ends of a run: hyphen-minus, en dash, em dash,
# minus sign, hyphen, non-breaking hyphen, figure dash.
_DASH = "[-\u2013\u2014\u2212\u2010\u2011\u2012]"
_NUM = "[-\u2212]?[0-9]+"
_CELL = rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)"
# One item: a single cell, or a run "(r,c1)-(r,c2)". Groups 3-4 are the run's end cell.
_ITEM = re.compile(rf"{_CELL}(?:\s*{_DASH}\s*{_CELL})?")
# Text that could still grow into a run tail "-(r,c)" (streaming): a single cell followed by this,
# up to the end of the text, may yet become a run, so it is not complete.
_TAIL_PREFIX = re.compile(
    rf"\s*(?:{_DASH}\s*(?:\(\s*(?:[-\u2212]|{_NUM}\s*(?:,\s*(?:[-\u2212]|{_NUM}\s*)?)?)?)?)?\Z"
)
_SEP = re.compile(r"\s*,\s*")
_TRAILING = re.compile(r"\s*,?\s*")
_DANGLING_RUN = re.compile(rf"\s*{_DASH}")
_NONE_BODY = re.compile(r"\s*(?:none|NONE|None)?\s*")


class SegFormatError(ValueError):
    """A seg string that breaks the grammar. ``reason`` says what is wrong, in words a person can act on."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _normalise_cells(cells: Iterable[Cell]) -> list[Cell]:
    """Validated, de-duplicated, sorted cells, with an error naming the first bad one."""
    out = set()
    for cell in cells:
        try:
            row, col = cell
        except (TypeError, ValueError):
            raise TypeError(f"a cell is a (row, col) pair of integers, got {cell!r}") from None
        if (
            row.__class__ is not int
            or col.__class__ is not int
            or not (0 <= row < GRID_SIZE and 0 <= col < GRID_SIZE)
        ):
            row, col = check_cell(cell)
        out.add((row, col))
    return sorted(out)


def format_seg_body(cells: Iterable[Cell]) -> str:
    """Canonical body: rows ascending, horizontal runs ``(r,c1)-(r,c2)``, singles ``(r,c)``, ``", "``-joined."""
    if isinstance(cells, (str, bytes)):
        raise TypeError("cells must be an iterable of (row, col) pairs; to read seg text use parse_seg")
    if not isinstance(cells, (set, frozenset, list, tuple)):
        cells = list(cells)  # an iterator could only be read once
    ordered = _fast_sorted(cells)
    if ordered is None:
        ordered = _normalise_cells(cells)
    parts: list[str] = []
    append = parts.append
    row = start = end = -2
    for r, c in ordered:
        if r == row and c == end + 1:
            end = c
            continue
        if row >= 0:
            append(f"({row},{start})" if end == start else f"({row},{start})-({row},{end})")
        row, start, end = r, c, c
    if row >= 0:
        append(f"({row},{start})" if end == start else f"({row},{start})-({row},{end})")
    return ", ".join(parts)


def _fast_sorted(cells: Iterable[Cell]) -> list[Cell] | None:
    """Sorted unique cells when they are all plain in-range int pairs, else None (take the checked path)."""
    try:
        ordered = sorted(set(cells))
    except TypeError:
        return None
    n = GRID_SIZE
    for cell in ordered:
        if cell.__class__ is not tuple or len(cell) != 2:
            return None
        r, c = cell
        if r.__class__ is not int or c.__class__ is not int or not (0 <= r < n and 0 <= c < n):
            return None
    return ordered


def format_seg(cells: Iterable[Cell]) -> str:
    """``<seg> body </seg>``; the empty set is ``<seg> </seg>`` (what a normal image is trained to say)."""
    body = format_seg_body(cells)
    return f"<seg> {body} </seg>" if body else "<seg> </seg>"


def locate_seg(text: str) -> tuple[int, int, bool, bool]:
    """Where the seg body is: ``(start, end, closed, terminated)``.

    The body starts after the first ``<seg>`` and ends at the next ``<`` (a seg body never holds one,
    so the next tag ends it, whichever it is). ``closed``: that tag is ``</seg>``. ``terminated``: some
    tag ended the body, i.e. it can no longer grow. Without ``<seg>``: a ``</seg>`` with no tag before it
    ends a body that starts at 0 (the opening tag was in the prompt); otherwise the text is a bare body.
    """
    start = text.find(SEG_OPEN)
    if start >= 0:
        start += len(SEG_OPEN)
    else:
        start = 0
    end = text.find("<", start)
    if end < 0:
        return start, len(text), False, False
    return start, end, text.startswith(SEG_CLOSE, end), True


def _int(s: str) -> int:
    return int(s) if s[0] != "\u2212" else -int(s[1:])


def _add_item(cells: set[Cell], r1: str, c1: str, r2: str | None, c2: str | None) -> None:
    """Lenient reading of one item: out-of-grid cells are dropped, a run is clipped to the grid, a
    reversed run is read forwards, and a run across rows contributes its two end cells."""
    row, col = _int(r1), _int(c1)
    if r2 is None:
        if 0 <= row < GRID_SIZE and 0 <= col < GRID_SIZE:
            cells.add((row, col))
        return
    row2, col2 = _int(r2), _int(c2)  # type: ignore[arg-type]
    if row2 != row:
        for r, c in ((row, col), (row2, col2)):
            if 0 <= r < GRID_SIZE and 0 <= c < GRID_SIZE:
                cells.add((r, c))
        return
    if not 0 <= row < GRID_SIZE:
        return
    lo, hi = (col, col2) if col <= col2 else (col2, col)
    for c in range(max(lo, 0), min(hi, GRID_SIZE - 1) + 1):
        cells.add((row, c))


def _read_body(body: str) -> set[Cell]:
    """Lenient reading of a whole body: every item `_add_item` can read."""
    cells: set[Cell] = set()
    for r1, c1, r2, c2 in _ITEM.findall(body):
        _add_item(cells, r1, c1, r2 or None, c2 or None)
    return cells


def _describe(snippet: str, limit: int = 40) -> str:
    snippet = snippet.strip()
    return repr(snippet if len(snippet) <= limit else snippet[:limit] + "...")


def _strict_body(body: str) -> set[Cell]:
    """Read a body under the full grammar; raise SegFormatError naming the first problem."""
    if _NONE_BODY.fullmatch(body):
        return set()
    return _strict_walk(body)


def _strict_walk(body: str) -> set[Cell]:
    """Item-by-item strict reading that raises with the precise reason and the offending text."""
    cells: set[Cell] = set()
    prev_end, prev_text = 0, ""
    for m in _ITEM.finditer(body):
        gap = body[prev_end : m.start()]
        if not prev_text:
            if gap and not gap.isspace():
                raise SegFormatError(f"unexpected text {_describe(gap)} before the first cell")
        elif not _SEP.fullmatch(gap):
            if gap.count(",") > 1 and not gap.replace(",", "").strip():
                raise SegFormatError(f"empty item: several commas between {prev_text!r} and {m.group(0)!r}")
            if not gap or gap.isspace():
                raise SegFormatError(f"missing comma between {prev_text!r} and {m.group(0)!r}")
            if _DANGLING_RUN.match(gap):
                raise SegFormatError(f"incomplete run: {prev_text + gap.rstrip()!r} has no valid end cell")
            raise SegFormatError(f"unexpected text {_describe(gap)} between {prev_text!r} and {m.group(0)!r}")
        _check_item(m)
        r1, c1, r2, c2 = m.groups()
        _add_item(cells, r1, c1, r2, c2)
        prev_end, prev_text = m.end(), m.group(0)
    tail = body[prev_end:]
    if not prev_text:
        raise SegFormatError(
            f"no cells in seg body {_describe(body)}: write (row,col) cells or leave it empty"
        )
    if not _TRAILING.fullmatch(tail):
        if _DANGLING_RUN.match(tail):
            raise SegFormatError(f"incomplete run: {prev_text + tail.rstrip()!r} has no valid end cell")
        raise SegFormatError(f"unexpected text {_describe(tail)} after the last cell {prev_text!r}")
    return cells


def _check_item(m: re.Match[str]) -> None:
    r1, c1, r2, c2 = m.groups()
    values = [(r1, c1)] if r2 is None else [(r1, c1), (r2, c2)]
    for r, c in values:
        row, col = _int(r), _int(c)
        if not (0 <= row < GRID_SIZE and 0 <= col < GRID_SIZE):
            raise SegFormatError(
                f"cell ({row},{col}) in {m.group(0)!r} is out of range: rows and columns are 0..{GRID_SIZE - 1}"
            )
    if r2 is None:
        return
    if _int(r1) != _int(r2):
        raise SegFormatError(
            f"run {m.group(0)!r} crosses rows {_int(r1)} and {_int(r2)}: a run stays in one row"
        )
    if _int(c1) > _int(c2):
        raise SegFormatError(
            f"run {m.group(0)!r} is reversed: its start column must not exceed its end column"
        )


def _strict_tags(text: str) -> str:
    """The body between the only ``<seg>`` and the only ``</seg>``; raise on any tag problem."""
    n_open, n_close = text.count(SEG_OPEN), text.count(SEG_CLOSE)
    if n_open == 0 and n_close == 0:
        raise SegFormatError("missing <seg> ... </seg> tags")
    if n_open == 0:
        raise SegFormatError("missing the opening <seg> tag")
    if n_close == 0:
        raise SegFormatError("unclosed <seg>: no </seg> follows it")
    if n_open > 1:
        raise SegFormatError(f"duplicate <seg> tag ({n_open} found): write one seg block")
    if n_close > 1:
        raise SegFormatError(f"duplicate </seg> tag ({n_close} found): write one seg block")
    start, end = text.index(SEG_OPEN) + len(SEG_OPEN), text.index(SEG_CLOSE)
    if end < start:
        raise SegFormatError("</seg> comes before <seg>")
    body = text[start:end]
    inner = body.find("<")
    if inner >= 0:
        raise SegFormatError(f"unexpected tag {_describe(body[inner:], 20)} inside <seg> ... </seg>")
    return body


def parse_seg(text: str, strict: bool = False) -> set[Cell]:
    """Cells written in the first ``<seg>...</seg>`` of ``text`` (or in a bare body without tags).

    Lenient mode (the default) never raises and returns whatever cells it can read: it accepts every
    dash the paper and models use, spaces and newlines anywhere, ``( 3 , 7 )``, trailing commas,
    ``none``/empty, an unclosed tag, and skips text it cannot read. ``strict=True`` is the grammar a
    reward checks: exactly one ``<seg>`` and ``</seg>``, comma-separated items, every index in range,
    runs within one row and left to right; otherwise :class:`SegFormatError` says what is wrong.
    """
    if strict:
        if not isinstance(text, str):
            raise SegFormatError(f"seg text must be a string, got {type(text).__name__}")
        return _strict_body(_strict_tags(text))
    if not isinstance(text, str):
        return set()
    start, end, _, _ = locate_seg(text)
    return _read_body(text[start:end])


def scan_seg_body(body: str, complete: bool = False) -> tuple[set[Cell], set[Cell]]:
    """(cells of every COMPLETE item, cells a pending last item would add) of a seg body that may still
    be streaming in.

    Complete: a run whose end cell is written, or a single cell followed by text that cannot turn it
    into a run. ``(1,2)-`` and a bare trailing ``(1,2)`` are pending: the next tokens may make them a
    run. ``complete=True`` when the body can no longer grow (a tag ended it): nothing is pending.
    """
    cells: set[Cell] = set()
    pending: set[Cell] = set()
    for m in _ITEM.finditer(body):
        r1, c1, r2, c2 = m.groups()
        if r2 is None and not complete and _TAIL_PREFIX.match(body, m.end()):
            _add_item(pending, r1, c1, None, None)
            break
        _add_item(cells, r1, c1, r2, c2)
    return cells, pending


def parse_seg_prefix(text: str) -> set[Cell]:
    """Cells of every complete item in a possibly unfinished seg (streaming).

    ``"<seg> (1,2)-(1,4), (3,"`` gives ``{(1,2), (1,3), (1,4)}``; ``"<seg> (1,2)-"`` gives nothing
    yet, since the run's end is not written. Once a tag ends the body this equals :func:`parse_seg`.
    Never raises.
    """
    if not isinstance(text, str):
        return set()
    start, end, _, terminated = locate_seg(text)
    return scan_seg_body(text[start:end], complete=terminated)[0]
