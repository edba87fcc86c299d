"""Training-free juxtaposed comparison of a query with a normal template of the same product.

`compare(query, template)` registers the template onto the query, measures colour, texture and
structure differences at several scales and returns a 16x16 cell score grid, the anomalous
judo.grid cells and a heat map. `compare(query, [t1, t2, ...])` or `compare(query, build_bank(...))`
judges every cell against the golden samples that explain it best and thresholds with a calibration
from the bank itself (leave-one-out, `calibrate`, stored beside the samples by `stored_calibration`)
for a chosen false-alarm rate; `result.rethreshold(sensitivity)` re-thresholds without recomputing. It needs no model weights and runs in about a tenth of a second on
a CPU: an offline engine, a visual prior next to the language models, and a baseline.
`describe` turns a result into a short factual explanation; `answer_anomaly_detection` and
`answer_localization` answer the two MMAD question kinds a comparison alone can (None = abstain).
"""

from judo.comparator.bank import Bank, BankError, build_bank
from judo.comparator.calibration import (
    DEFAULT_FALSE_ALARM_RATE,
    Calibration,
    CalibrationError,
    calibrate,
    stored_calibration,
)
from judo.comparator.compare import ComparisonResult, compare
from judo.comparator.describe import (
    Region,
    answer_anomaly_detection,
    answer_localization,
    borderline_note,
    describe,
    parse_position,
    region_name,
    regions,
)
from judo.comparator.register import Registration

__all__ = [
    "DEFAULT_FALSE_ALARM_RATE",
    "Bank",
    "BankError",
    "Calibration",
    "CalibrationError",
    "ComparisonResult",
    "Region",
    "Registration",
    "answer_anomaly_detection",
    "answer_localization",
    "borderline_note",
    "build_bank",
    "calibrate",
    "compare",
    "describe",
    "parse_position",
    "region_name",
    "regions",
    "stored_calibration",
]
