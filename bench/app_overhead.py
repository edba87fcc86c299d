"""The app's cost over raw streaming generation, with the tiny model (both measured in this one run).

- time to first update: request submitted (gradio_client) -> first streamed update / first text;
- overhead per token: (app streaming time - raw `stream_generate` time) / tokens, where both times run
  from the first text delta to the last one, for the same greedy prompt and token budget. The app
  path includes the engine, the parser, the UI handler, the queue, SSE and the client.
Target: overhead under 5% of generation time. The tiny model makes tokens unusually cheap (a few
ms), so this is a pessimistic bound for a 7B model (tens of ms per token).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

QUERY = REPO / "examples" / "bottle" / "bottle-contamination-000.png"
TEMPLATE = REPO / "examples" / "templates" / "bottle" / "00.png"
QUESTION = "Is there any defect in the object?"
OPTIONS = {"A": "Yes.", "B": "No."}
TOKENS = 48  # the tiny config's token cap
ROUNDS = 5


def raw_run(model, processor) -> tuple[float, int]:
    from judo.generation import stream_generate
    from judo.images import load_image
    from judo.prompts import inspection_prompt

    prompt = inspection_prompt(load_image(QUERY), load_image(TEMPLATE), QUESTION, OPTIONS)
    first = last = None
    n = 0
    for _ in stream_generate(model, processor, prompt, max_new_tokens=TOKENS):
        now = time.perf_counter()
        first = first or now
        last = now
        n += 1
    return (last - first), n


def app_run(client) -> tuple[float, float, float, float]:
    """(first update, first text, first->last streamed text, last streamed text -> final result) in s."""
    from gradio_client import handle_file

    t0 = time.perf_counter()
    job = client.submit(handle_file(str(QUERY)), handle_file(str(TEMPLATE)), QUESTION, "A. Yes.\nB. No.", "tiny",
                        "bottle", None, "", False, TOKENS, False, 0.7, 0.9, api_name="/inspect")
    first_update = first_text = last_text = final = None
    for out in job:
        now = time.perf_counter()
        first_update = first_update or now - t0
        if isinstance(out[5], dict) and out[5].get("done"):  # the final update (record, metrics)
            final = now
        elif isinstance(out[2], str) and out[2]:
            first_text = first_text or now
            last_text = now
    return first_update, (first_text - t0), (last_text - first_text), (final - last_text)


def main() -> int:
    from gradio_client import Client

    from judo.models import load_model, load_processor
    from judo.tiny import build_tiny
    from tests.app_server import serve_tiny_app

    with tempfile.TemporaryDirectory() as tmp:
        tiny = build_tiny(Path(tmp) / "tiny", seed=0)
        model, processor = load_model(tiny), load_processor(tiny)
        raw_run(model, processor)  # warm-up
        with serve_tiny_app(tiny) as served:
            client = Client(served.url, verbose=False)
            app_run(client)  # warm-up
            raws, apps, firsts, first_texts, deltas, finals = [], [], [], [], [], []
            for _ in range(ROUNDS):  # interleaved, so machine load hits both alike
                r, n = raw_run(model, processor)
                raws.append(r)
                deltas.append(n)
                fu, ft, a, fin = app_run(client)
                apps.append(a)
                finals.append(fin)
                firsts.append(fu)
                first_texts.append(ft)
    raw, app = statistics.median(raws), statistics.median(apps)
    n = statistics.median(deltas)
    ratio = (app - raw) / raw
    print(f"tiny model, {TOKENS} new tokens, {ROUNDS} interleaved rounds (medians)")
    print(f"  time to first update (request -> 'running'):  {statistics.median(firsts) * 1000:7.1f} ms")
    print(f"  time to first streamed text:                  {statistics.median(first_texts) * 1000:7.1f} ms")
    print(f"  raw stream_generate, first->last delta:       {raw * 1000:7.1f} ms ({n:.0f} deltas, "
          f"{raw / n * 1000:.2f} ms/token)")
    print(f"  through the app, first->last text:            {app * 1000:7.1f} ms")
    print(f"  final update (parse, record, full-size PNG):  {statistics.median(finals) * 1000:7.1f} ms")
    print(f"  app overhead: {(app - raw) / n * 1000:+.2f} ms/token = {ratio * 100:+.1f}% of generation time "
          f"(target < 5%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
