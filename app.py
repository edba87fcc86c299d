"""Hugging Face Space / `make app` entry point: load the configured engines at start-up and serve the app.

Configuration: configs/app.yaml, or the file named by JUDO_CONFIG; host and port from GRADIO_SERVER_NAME /
GRADIO_SERVER_PORT (Gradio's convention). A configuration error or a taken port is one sentence and exit
code 2, before any model is loaded. On ZeroGPU Spaces the inspection handlers run under `spaces.GPU`;
elsewhere that decorator is absent and they run as they are.
"""

from __future__ import annotations

import logging
import sys

from judo.app.server import create_app, port_problem, serve_address
from judo.engines import ConfigError, load_config

try:  # present on Hugging Face Spaces only
    import spaces

    gpu = spaces.GPU(duration=120)
except ImportError:
    gpu = None

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
try:
    config = load_config()
    host, port = serve_address()
    problem = port_problem(host, port)
    if problem:
        raise ConfigError(problem)
except ConfigError as err:
    print(f"app.py: {err}", file=sys.stderr)
    sys.exit(2)
demo, launch_kwargs = create_app(config, gpu=gpu)  # models are loaded here, once, before the first request

if __name__ == "__main__":
    demo.launch(server_name=host, server_port=port, **launch_kwargs)
