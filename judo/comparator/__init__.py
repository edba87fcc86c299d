"""Training-free juxtaposed comparison of a query with a normal template of the same product.

`compare(query, template)` registers the template onto the query, measures colour, texture and
structure differences at several scales and returns a 16x16 cell score grid, the anomalous
judo.grid cells and a heat map. It needs no model weights, runs in about a tenth of a second on a
CPU, and serves as an offline engine, a visual prior next to the language models and a baseline.
"""

from judo.comparator.compare import ComparisonResult, compare
from judo.comparator.register import Registration

__all__ = ["ComparisonResult", "Registration", "compare"]
