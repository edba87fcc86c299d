"""The offline tiny Qwen2.5-VL: deterministic, small, Qwen-shaped tokenizer, chat format and geometry."""

from __future__ import annotations

import json

import pytest
import torch

from judo.synthetic.tiny_model import (
    CHAT_TEMPLATE,
    SPECIAL_TOKENS,
    _config,
    _train_tokenizer,
    build_tiny,
    main,
    weights_hash,
)


def test_build_is_deterministic_for_a_seed(tiny_model_dir, tmp_path):
    again = build_tiny(tmp_path / "again", seed=0)
    assert weights_hash(again) == weights_hash(tiny_model_dir)
    assert (again / "tokenizer.json").read_bytes() == (tiny_model_dir / "tokenizer.json").read_bytes()


def test_build_does_not_touch_the_callers_rng_or_default_dtype(tmp_path):
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    build_tiny(tmp_path / "t", seed=7)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_default_dtype() == torch.float32


def test_7b_size_is_qwen25vl_7b_architecture():
    """Built on the meta device (no memory): the published parameter count and layer shapes."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    config = _config(_train_tokenizer(), "7b")
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(config)
    total = sum(p.numel() for p in model.parameters())
    assert 8.28e9 < total < 8.30e9  # Qwen2.5-VL-7B-Instruct: 8.29 B
    text = model.model.language_model
    assert len(text.layers) == 28 and text.embed_tokens.weight.shape == (152064, 3584)
    assert text.layers[0].self_attn.k_proj.weight.shape == (512, 3584)  # 4 KV heads x 128
    assert text.layers[0].mlp.gate_proj.weight.shape == (18944, 3584)
    assert len(model.model.visual.blocks) == 32 and config.vision_config.out_hidden_size == 3584
    with pytest.raises(ValueError, match="unknown size"):
        build_tiny("/nonexistent", size="70b")


def test_cli_builds_another_seed(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "seed1"
    assert main([str(out), "--seed", "1"]) == 0
    assert "tiny random Qwen2.5-VL written to" in capsys.readouterr().out
    assert weights_hash(out) != weights_hash(tiny_model_dir)


def test_cli_rejects_a_file_as_output(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(SystemExit) as err:
        main([str(target)])
    assert err.value.code == 2


def test_checkpoint_is_small_and_safetensors_only(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "preprocessor_config.json",
        "chat_template.json",
        "generation_config.json",
    } <= names
    assert not any(n.endswith((".bin", ".pt", ".pth")) for n in names)
    total = sum(p.stat().st_size for p in tiny_model_dir.iterdir())
    assert total < 8_000_000, f"tiny checkpoint is {total / 1e6:.1f} MB"


def test_config_has_qwen25vl_geometry_and_token_ids(tiny_model_dir):
    from judo.models import load_processor

    config = json.loads((tiny_model_dir / "config.json").read_text())
    tokenizer = load_processor(tiny_model_dir).tokenizer
    assert config["model_type"] == "qwen2_5_vl"
    assert config["vision_config"]["patch_size"] == 14
    assert config["vision_config"]["spatial_merge_size"] == 2
    assert config["vision_config"]["out_hidden_size"] == config["text_config"]["hidden_size"]
    assert config["image_token_id"] == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert config["vision_start_token_id"] == tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert config["text_config"]["vocab_size"] >= len(tokenizer)
    rope = config["text_config"]["rope_parameters"]
    head_dim = config["text_config"]["hidden_size"] // config["text_config"]["num_attention_heads"]
    assert sum(rope["mrope_section"]) == head_dim // 2


def test_tokenizer_special_tokens_and_plain_tags(tiny_model_dir):
    from judo.models import load_processor

    tokenizer = load_processor(tiny_model_dir).tokenizer
    assert type(tokenizer).__name__ == "Qwen2Tokenizer"
    for token in SPECIAL_TOKENS:
        ids = tokenizer.encode(token, add_special_tokens=False)
        assert len(ids) == 1 and tokenizer.convert_ids_to_tokens(ids[0]) == token
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    # The JUDO tags are ordinary text: they must survive decoding with special tokens skipped.
    for tag in ("<seg>", "</seg>", "<think>", "</think>", "<answer>", "</answer>"):
        assert tag not in tokenizer.all_special_tokens
    response = "<seg> (11,12)-(11,14), (12,11) </seg><think> A dark scratch. </think><answer>B</answer>"
    ids = tokenizer.encode(response + "<|im_end|>", add_special_tokens=False)
    assert tokenizer.decode(ids, skip_special_tokens=True) == response


def test_chat_template_renders_the_qwen_format(tiny_model_dir):
    from judo.models import load_processor

    processor = load_processor(tiny_model_dir)
    assert processor.chat_template == CHAT_TEMPLATE
    messages = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "T:"}, {"type": "image"}, {"type": "text", "text": "Q?"}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "<seg> </seg>"}]},
    ]
    text = processor.apply_chat_template(messages, tokenize=False)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nT:<|vision_start|><|image_pad|><|vision_end|>Q?<|im_end|>\n"
        "<|im_start|>assistant\n<seg> </seg><|im_end|>\n"
    )
    prompt = processor.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")


def test_generation_markers_select_the_assistant_turn(tiny_model_dir):
    from judo.models import load_processor

    tokenizer = load_processor(tiny_model_dir).tokenizer
    messages = [
        {"role": "user", "content": "Is it defective?"},
        {"role": "assistant", "content": "<answer>A</answer>"},
    ]
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    kept = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tokenizer.decode(kept) == "<answer>A</answer><|im_end|>\n"
