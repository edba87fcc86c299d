"""The inspection app (Gradio): `judo app` serves it (`judo.app.server.main`), app.py on a Space.

One module per concern: `state` (what the page is built from), `layout` (the components and their
wiring), `handlers` (the small events), `api` (the ``/inspect`` and ``/compare`` endpoints by name),
`runner` and `comparing` (the streamed runs), `streaming` (Stop, pacing, the clock), `views` and
`pictures` (what the page shows), `inputs` (validation), `library` (golden samples, examples),
`presets`, `bank` (the comparator's bank), `downloads`, `owner` and `guard` (who may see and cost
what), `server` (launching).
"""
