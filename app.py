"""Hugging Face Space / `make app` entry point: load the configured engines at start-up and serve the app.

Configuration: configs/app.yaml, or the file named by JUDO_CONFIG; host and port from GRADIO_SERVER_NAME /
GRADIO_SERVER_PORT (Gradio's convention). On ZeroGPU Spaces the inspection handlers run under
`spaces.GPU`; elsewhere that decorator is absent and they run as they are.
"""

from __future__ import annotations

import logging

from judo.ui import create_app

try:  # present on Hugging Face Spaces only
    import spaces

    gpu = spaces.GPU(duration=120)
except ImportError:
    gpu = None

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
demo, launch_kwargs = create_app(gpu=gpu)  # models are loaded here, once, before the first request

if __name__ == "__main__":
    demo.launch(**launch_kwargs)
