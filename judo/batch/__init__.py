"""Batch inspection: every image of a folder or zip against one product's golden samples.

`discover` finds the parts (and lists what it left out and why), `run_batch` inspects them with any
engine, resumably, into an output folder (``results.jsonl`` + overlay PNGs), and `judo.batch.report`
exports the CSV, the JSON records and one self-contained HTML report. Used by `judo inspect --folder`
and the app's Batch tab.
"""

from judo.batch.parts import (
    BatchInputError,
    Discovery,
    Part,
    Skipped,
    discover,
    discover_folder,
    discover_zip,
)
from judo.batch.run import (
    DEFAULT_OPTIONS,
    DEFAULT_QUESTION,
    RESULTS_FILE,
    BatchResult,
    BatchSpec,
    Progress,
    ResultStore,
    result_from_row,
    run_batch,
    skipped_results,
)

__all__ = [
    "DEFAULT_OPTIONS",
    "DEFAULT_QUESTION",
    "RESULTS_FILE",
    "BatchInputError",
    "BatchResult",
    "BatchSpec",
    "Discovery",
    "Part",
    "Progress",
    "ResultStore",
    "Skipped",
    "discover",
    "discover_folder",
    "discover_zip",
    "result_from_row",
    "run_batch",
    "skipped_results",
]
