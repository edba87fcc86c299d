"""Calibration of a bank from its own normals: a threshold for a chosen false-alarm rate.

Why: how different a good part looks from the golden samples depends on the product (a glossy can, a
speckled pill, a carpet's fibres), so one threshold fits no product. The bank already holds the
answer: leave one normal out, judge it against the others exactly as a query is judged, and the cell
values it gets are what a good part scores. Pooled over the bank, their upper tail is modelled as
exponential beyond its TAIL_QUANTILE (peaks over a threshold, the generalised Pareto tail of shape
zero), which extrapolates to rates rarer than the bank can show directly. The false-alarm rate is
counted in cells that exceed the threshold per good part: 0.05 = "one false cell per 20 good parts".

The calibration is stored beside the golden samples (CALIBRATION_FILE), keyed by the bank's content
hash (bank.Bank.key: the pixel digests of its normals) and this module's VERSION; a file written for
other pictures or by another version is rebuilt, never trusted.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from judo.comparator.bank import Bank
from judo.grid import GRID_SIZE

CALIBRATION_FILE = ".judo_calibration.json"
VERSION = 3
#: The rate used when none is asked for: one false cell per 50 good parts.
DEFAULT_FALSE_ALARM_RATE = 0.02
#: The tail model starts at this quantile of the pooled normal cell values.
TAIL_QUANTILE = 0.9
#: Fewer normals than this: the calibration is given, with a warning that it rests on little.
FEW_NORMALS = 8
#: Fewer than this: no leave-one-out is possible that means anything (a query needs two to compare).
MIN_NORMALS = 3
#: Calibrations kept in memory, by bank key.
_memory: dict[str, Calibration] = {}


class CalibrationError(ValueError):
    """A rate outside (0, 256) false cells per part, or a bank too small to calibrate."""


@dataclass(frozen=True)
class Calibration:
    """The upper tail of a bank's normal cell values (leave-one-out), and what it rests on."""

    bank_key: str
    normals: int
    tail_start: float  # the TAIL_QUANTILE of the pooled values
    tail_scale: float  # mean excess beyond tail_start (the exponential tail's scale)
    tail_share: float  # share of cells beyond tail_start
    max_value: float
    seconds: float = 0.0
    version: int = VERSION
    names: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        if self.normals < FEW_NORMALS:
            return [
                (
                    f"the calibration rests on only {self.normals} golden samples; its false-alarm rate is a "
                    f"rough estimate (use {FEW_NORMALS} or more)"
                )
            ]
        return []

    def threshold(self, false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE) -> float:
        """The cell value that normal cells exceed `false_alarm_rate` times per good part."""
        if not 0 < false_alarm_rate < GRID_SIZE**2:
            raise CalibrationError(
                f"the false-alarm rate must be above 0 and below {GRID_SIZE**2} cells per part, got "
                f"{false_alarm_rate}"
            )
        p = false_alarm_rate / GRID_SIZE**2
        if p >= self.tail_share:
            return self.tail_start
        return self.tail_start + self.tail_scale * math.log(self.tail_share / p)

    def rate_at(self, threshold: float) -> float:
        """The inverse of `threshold`: expected false cells per good part at a cell threshold."""
        if threshold <= self.tail_start:
            return self.tail_share * GRID_SIZE**2
        return (
            self.tail_share
            * math.exp(-(threshold - self.tail_start) / max(self.tail_scale, 1e-9))
            * GRID_SIZE**2
        )


def fit_tail(values: np.ndarray) -> tuple[float, float, float]:
    """(start, scale, share) of the exponential upper tail of `values` (see the module docstring)."""
    flat = np.sort(np.asarray(values, np.float64).ravel())
    start = float(np.quantile(flat, TAIL_QUANTILE))
    beyond = flat[flat > start]
    share = len(beyond) / len(flat)
    scale = float(np.mean(beyond - start)) if len(beyond) else 0.0
    return start, max(scale, 1e-3), max(share, 1.0 / len(flat))


def leave_one_out(bank: Bank) -> np.ndarray:
    """(K, 16, 16) cell values of each normal judged against the others, as a query is judged."""
    from judo.comparator.compare import compare_prepared  # compare uses calibrations: imported here

    out = []
    for i, normal in enumerate(bank.normals):
        others = bank.subset([j for j in range(len(bank)) if j != i])
        out.append(compare_prepared(normal.prepared, others, calibrate=False).values)
    return np.stack(out)


def calibrate(bank: Bank) -> Calibration:
    """Leave-one-out calibration of `bank` (cached in memory by the bank's content hash)."""
    if len(bank) < MIN_NORMALS:
        raise CalibrationError(
            f"a calibration needs at least {MIN_NORMALS} golden samples, the bank has {len(bank)}"
        )
    known = _memory.get(bank.key)
    if known is not None:
        return known
    start = time.perf_counter()
    values = leave_one_out(bank)
    tail_start, scale, share = fit_tail(values)
    result = Calibration(
        bank_key=bank.key,
        normals=len(bank),
        tail_start=tail_start,
        tail_scale=scale,
        tail_share=share,
        max_value=float(values.max()),
        seconds=round(time.perf_counter() - start, 3),
        names=[n.name for n in bank.normals],
    )
    _memory[bank.key] = result
    return result


def load_calibration(path: Path, bank: Bank) -> Calibration | None:
    """The stored calibration if it was written for exactly this bank by this version, else None."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        found = Calibration(**raw)
    except (OSError, ValueError, TypeError):
        return None
    if found.version != VERSION or found.bank_key != bank.key or found.normals != len(bank):
        return None
    return found


def stored_calibration(bank: Bank, folder: str | Path) -> tuple[Calibration, bool]:
    """The bank's calibration from `folder`/CALIBRATION_FILE, rebuilt and rewritten when missing,
    unreadable or written for other pictures. Returns (calibration, rebuilt)."""
    path = Path(folder) / CALIBRATION_FILE
    found = load_calibration(path, bank)
    if found is not None:
        _memory[bank.key] = found
        return found, False
    fresh = calibrate(bank)
    try:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(fresh), indent=1), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass  # a read-only golden folder: the calibration still holds for this process
    return fresh, True
