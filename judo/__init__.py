"""JUDO Inspector: juxtaposed, domain-oriented multimodal reasoning for industrial anomaly QA.

The package is one core shared by the inspection app, the training recipes and the MMAD evaluator.
Its lowest floor (`grid`, `mmad`, `images`, `models`, `tiny`) imports neither gradio nor trl.
"""

__version__ = "0.1.0"
