"""Randomly initialised Qwen2.5-VL checkpoints built fully offline: tiny, or at the real 7B size.

Tests, benchmarks and plumbing demos need a *real* Qwen2.5-VL (same classes, same processor, same chat
format, same 448x448 -> 16x16 vision-token geometry) but no weights can be downloaded here. This module
makes one from nothing in a few seconds: a byte-level BPE tokenizer trained on a built-in corpus,
Qwen's special tokens, a Qwen2.5-VL chat template, the Qwen2.5-VL image processor settings and a
~1M-parameter model initialised from a seed. Same seed -> byte-identical weights.

`--size 7b` gives the same tokenizer and processor around Qwen2.5-VL-7B's exact architecture (8.3 B
parameters, 152,064-row embeddings): random weights with the real memory and speed, for measuring
serving and training on a GPU (bench/gpu_7b.py). It is initialised in bf16 on the GPU when there is one
(16.6 GB); on a CPU it needs ~17 GB of RAM.

Usage: ``judo tiny OUT_DIR [--seed N] [--size tiny|7b]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
from pathlib import Path

# Qwen2.5-VL's special tokens, in the order of the real vocabulary (ids follow the trained BPE here).
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

BPE_VOCAB_SIZE = 3000  # trained tokens (bytes + merges); the special tokens come on top
VOCAB_MULTIPLE = 64  # embeddings are padded past len(tokenizer), as in the real checkpoints

# The Qwen2.5-VL conversation format: <|im_start|>role\n...<|im_end|>\n, a default system turn, each image
# as <|vision_start|><|image_pad|><|vision_end|> (the processor expands the pad to one token per merged
# patch). Assistant turns (text only) sit inside {% generation %} markers so `return_assistant_tokens_mask`
# works; the markers render nothing. Newlines sit before block tags: transformers renders with trim_blocks.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}"
    "{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endgeneration %}"
    "{% elif message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# A small built-in corpus so the BPE learns the words this project actually feeds the model.
_CORPUS_TEXT = """
You are a helpful assistant. You are an industrial inspector who checks products for defects.
Test image: judge whether there is a defect in the query image and answer the questions.
Answer with the option's letter from the given choices directly.
The following is domain knowledge about this category, with the defect types and the normal characteristics.
The first image is a normal template of the product. The last image is the query image to inspect.
Here is a normal template image of the product. Here is the query image.
Question: Is there any defect in the object? Question: There is a defect in the object. Where is the defect?
Question: What type of defect is it? Question: What is the appearance of the defect?
Question: What is the effect of the defect? Question: What kind of product is in the image?
Question: What is the structure of the object? Question: What are the details of the object?
A. Yes. B. No. A. Top left. B. Bottom right. C. Center. D. Top right. E. Bottom left.
A. Scratch. B. Hole. C. Stain. D. Crack. Missing part. Contamination. Broken large. Broken small.
Bent wire. Cable swap. Cut inner insulation. Poke insulation. Faulty imprint. Color. Fold. Glue. Thread.
Metal contamination. Squeeze. Rough. Liquid. Print. Manipulated front. Scratch head. Scratch neck.
bottle cable capsule carpet grid hazelnut leather metal nut pill screw tile toothbrush transistor wood zipper
breakfast box juice bottle pushpins screw bag splicing connectors candle capsules cashew chewing gum fryum
macaroni pcb pipe fryum drink can cigarette box food package
Output format: first <seg> with the anomalous cells of the 16x16 grid over the query image </seg>, then
<think> comparative reasoning between the query and the template </think>, then <answer> the letter </answer>.
Write each row's horizontal run of cells as (row,start)-(row,end) and a single cell as (row,col).
Use <seg> </seg> when the query image is normal. Rows and columns count from 0 at the top left to 15.
<seg> (11,12)-(11,14), (12,11) </seg><think> Compared with the template, the query shows a dark scratch on
the surface near the bottom right; the template is clean there, so the object is defective. </think>
<answer>A</answer>
<seg> </seg><think> The query matches the template: same shape, color and texture, no missing part, so the
object is normal. </think><answer>B</answer>
Compared with the template image, the query image has an irregular mark, a crack, a hole, a stain, a
deformation, a missing component, a misaligned part, a contamination spot, a color difference, a bent lead.
The surface is smooth and uniform; the edges are straight; the texture is regular; the print is clear.
Describe the defect in the image. Explain why it matters for quality control and the function of the part.
Normal characteristics: uniform color, intact structure, complete parts, correct position and alignment.
Defect types: scratches, holes, stains, cracks, dents, missing pieces, foreign material, wrong assembly.
Picture 1: Picture 2: The answer is A. The answer is B. The correct option is C. I choose D. Option E.
"""


def _corpus() -> list[str]:
    """Corpus lines plus every seg coordinate form, so digits, commas and dashes are well covered."""
    lines = [line.strip() for line in _CORPUS_TEXT.strip().splitlines() if line.strip()]
    for r in range(16):
        lines.append(", ".join(f"({r},{c})" for c in range(16)))
        lines.append(f"<seg> ({r},0)-({r},15) </seg>")
    return lines * 4


def _train_tokenizer():
    """Train a byte-level BPE with Qwen2's pre-tokenizer and wrap it as a Qwen2Tokenizer."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(), trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    vocab = dict(model["vocab"])
    for token in SPECIAL_TOKENS:  # ids after the BPE, in Qwen's order
        vocab.setdefault(token, len(vocab))
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=list(SPECIAL_TOKENS[1:]),
        model_max_length=32768,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


#: Widths per size. "7b" is Qwen2.5-VL-7B-Instruct's architecture (its embeddings have 152,064 rows,
#: more than this tokenizer uses, as the real vocabulary is padded too).
SIZES: dict[str, dict] = {
    "tiny": {
        "text": {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "mrope_section": [2, 3, 3],
        },
        "vision": {
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "fullatt_block_indexes": [1],
        },
        "vocab_size": None,  # len(tokenizer) rounded up to VOCAB_MULTIPLE
    },
    "7b": {
        "text": {
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_hidden_layers": 28,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "max_position_embeddings": 128000,
            "mrope_section": [16, 24, 24],
        },
        "vision": {
            "depth": 32,
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "fullatt_block_indexes": [7, 15, 23, 31],
        },
        "vocab_size": 152064,
    },
}


def _config(tokenizer, size: str = "tiny"):
    """A Qwen2.5-VL config with the real geometry (patch 14, merge 2) and the widths of `size`."""
    from transformers import Qwen2_5_VLConfig

    widths = SIZES[size]
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab_size = widths["vocab_size"] or -(-len(tokenizer) // VOCAB_MULTIPLE) * VOCAB_MULTIPLE
    text = dict(widths["text"])
    mrope_section = text.pop("mrope_section")
    text_config = {
        **text,
        "vocab_size": vocab_size,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": mrope_section},
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    vision_config = {
        **widths["vision"],
        "out_hidden_size": text["hidden_size"],
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
    }
    return Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


def _image_processor():
    """Qwen2.5-VL's preprocessing defaults (the PIL backend works with or without torchvision)."""
    from transformers import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(
        min_pixels=56 * 56,
        max_pixels=28 * 28 * 16384,
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
    )


@contextlib.contextmanager
def _init_context(seed: int, device: str, dtype):
    """Seeded initialisation on `device` in `dtype`, leaving the caller's RNG and default dtype alone."""
    import torch

    rng, default_dtype = torch.random.get_rng_state(), torch.get_default_dtype()
    try:
        torch.manual_seed(seed)
        torch.set_default_dtype(dtype)
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(default_dtype)
        torch.random.set_rng_state(rng)


def build_tiny(out_dir: str | Path, seed: int = 0, size: str = "tiny") -> Path:
    """Write a loadable random Qwen2.5-VL checkpoint (weights, tokenizer, processor) to ``out_dir``.

    size "tiny" (default): fp32, deterministic (the same seed gives byte-identical ``model.safetensors``).
    size "7b": the real architecture in bf16, initialised on the GPU when there is one. Returns the folder.
    """
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    from judo.models import ImageOnlyQwen2_5_VLProcessor, save_processor

    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; known: {', '.join(SIZES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer()
    config = _config(tokenizer, size)
    full = size != "tiny"
    device = "cuda" if full and torch.cuda.is_available() else "cpu"
    with _init_context(seed, device, torch.bfloat16 if full else torch.float32):
        model = Qwen2_5_VLForConditionalGeneration(config).eval()
    eos = [tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    model.generation_config = GenerationConfig(
        eos_token_id=eos, pad_token_id=tokenizer.pad_token_id, do_sample=False
    )
    model.save_pretrained(out, safe_serialization=True)
    del model
    processor = ImageOnlyQwen2_5_VLProcessor(
        image_processor=_image_processor(), tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
    )
    save_processor(processor, out)
    return out


def weights_hash(model_dir: str | Path) -> str:
    """sha256 of the checkpoint's safetensors files: equal hashes mean identical weights."""
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="judo tiny",
        description="Build a tiny random Qwen2.5-VL checkpoint offline (for tests and plumbing demos; "
        "its answers are noise).",
    )
    parser.add_argument("out_dir", type=Path, help="folder to write the checkpoint to")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")
    parser.add_argument(
        "--size",
        choices=tuple(SIZES),
        default="tiny",
        help="tiny (~1 MB, tests) or 7b (Qwen2.5-VL-7B's architecture, 16.6 GB of random bf16 "
        "weights, for GPU measurements)",
    )
    args = parser.parse_args(argv)
    if args.out_dir.exists() and not args.out_dir.is_dir():
        parser.error(f"{args.out_dir} exists and is not a folder")
    path = build_tiny(args.out_dir, seed=args.seed, size=args.size)
    size_mb = sum(p.stat().st_size for p in path.iterdir() if p.is_file()) / 1e6
    digest = f", weights sha256 {weights_hash(path)[:16]}" if args.size == "tiny" else ""
    print(f"{args.size} random Qwen2.5-VL written to {path} ({size_mb:,.1f} MB{digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
