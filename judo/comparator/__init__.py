"""Training-free juxtaposed comparison of a query with a normal template of the same product.

`compare(query, template)` registers the template onto the query, measures colour, texture and
structure differences at several scales and returns a 16x16 cell score grid, the anomalous
judo.grid cells and a heat map. It needs no model weights and runs in about a tenth of a second on
a CPU: an offline engine, a visual prior next to the language models, and a baseline.
`describe` turns a result into a short factual explanation; `answer_anomaly_detection` and
`answer_localization` answer the two MMAD question kinds a comparison alone can (None = abstain).
"""

from judo.comparator.compare import ComparisonResult, compare
from judo.comparator.describe import (
    Region,
    answer_anomaly_detection,
    answer_localization,
    describe,
    parse_position,
    region_name,
    regions,
)
from judo.comparator.register import Registration

__all__ = [
    "ComparisonResult",
    "Region",
    "Registration",
    "answer_anomaly_detection",
    "answer_localization",
    "compare",
    "describe",
    "parse_position",
    "region_name",
    "regions",
]
