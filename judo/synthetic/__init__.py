"""Synthetic stand-ins for what cannot be downloaded here: procedural products with painted defects in
MMAD's layout (`judo synth`), and a tiny random Qwen2.5-VL (`tiny_model`, `judo tiny`).

Tests, examples, benchmarks and the tiny demo engine use them instead of real datasets and weights,
which the project does not ship. Their pictures and weights mean nothing for quality.
Everything is deterministic for a numpy Generator (or a seed).
"""

from judo.synthetic.defects import DEFECT_KINDS, paint_defect
from judo.synthetic.layout import make_mmad_root
from judo.synthetic.products import CATEGORIES, make_product

__all__ = ["CATEGORIES", "DEFECT_KINDS", "make_mmad_root", "make_product", "paint_defect"]
