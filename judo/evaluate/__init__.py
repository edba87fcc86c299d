"""MMAD evaluation: run an engine with the official 1-shot protocol, score it like MMAD does, compare runs.

- `records`  — the JSONL record per question; readers for ours and MMAD's answer JSON; the resumable writer
- `score`    — pure scoring: MMAD-official (unparseable dropped), strict (unparseable = wrong), seg metrics
- `truth`    — ground-truth seg cells from an MMAD root's masks (the only part of scoring that reads images)
- `report`   — markdown / CSV / JSON renderings of score tables
- `plots`    — matplotlib (Agg) figures: per-subtask bars, stage progression
- `run`      — `judo eval`;  `score_cli` — `judo score`;  `compare` — `judo compare`
"""
