"""Synthetic inspection data: procedural products, painted defects and an MMAD-layout generator.

Tests, examples and benchmarks use it instead of real datasets, which the project may not ship.
Everything is deterministic for a numpy Generator (or a seed).
"""

from judo.synth.defects import DEFECT_KINDS, paint_defect
from judo.synth.layout import make_mmad_root
from judo.synth.products import CATEGORIES, make_product

__all__ = ["CATEGORIES", "DEFECT_KINDS", "make_mmad_root", "make_product", "paint_defect"]
