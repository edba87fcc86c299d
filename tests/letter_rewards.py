"""An own GRPO reward, plugged in by module path (`tests.letter_rewards:letter_share_reward`).

JUDO's rewards are all 0 on the random text a tiny untrained model samples, so every advantage is 0
and GRPO has nothing to learn from. This reward differs between any two random completions, which lets
the training tests check that a GRPO step really moves the weights.
"""

from __future__ import annotations

from typing import Any

from judo.rewards import completion_text

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def letter_share_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """The share of a completion's characters that are ASCII letters (0 for an empty completion)."""
    texts = [completion_text(c) for c in completions]
    return [sum(ch.lower() in LETTERS for ch in t) / len(t) if t else 0.0 for t in texts]
