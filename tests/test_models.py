"""Loading checkpoints: the tiny model round-trips, processor configs of every origin load, errors say what to do."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

from judo.models import (
    ImageOnlyQwen2_5_VLProcessor,
    ModelLoadError,
    default_device,
    is_hub_id,
    load_model,
    load_processor,
    torchvision_available,
)
from tests.checkpoint_layout import assert_stock_layout

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")


def test_roundtrip_cpu_fp32_eval(tiny_model_dir):
    model = load_model(tiny_model_dir, device="cpu")
    assert isinstance(model, Qwen2_5_VLForConditionalGeneration)
    assert not model.training
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert model.device.type == "cpu"
    processor = load_processor(tiny_model_dir)
    assert isinstance(processor, Qwen2_5_VLProcessor)
    if not torchvision_available():
        assert isinstance(processor, ImageOnlyQwen2_5_VLProcessor)
        assert type(processor.image_processor).__name__ == "Qwen2VLImageProcessorPil"
    assert processor.image_processor.patch_size == 14 and processor.image_processor.merge_size == 2


def test_dtype_can_be_chosen(tiny_model_dir):
    model = load_model(tiny_model_dir, device="cpu", dtype="bf16")
    assert next(model.parameters()).dtype == torch.bfloat16


@no_cuda
def test_default_device_is_cpu_without_gpu():
    assert default_device() == "cpu"


def test_processor_saved_again_reloads_with_stock_names(tiny_model_dir, tmp_path):
    """What trainer.save_model() writes (it calls processor.save_pretrained) is Qwen's own layout."""
    processor = load_processor(tiny_model_dir)
    processor.save_pretrained(tmp_path)
    shutil.copy(tiny_model_dir / "config.json", tmp_path / "config.json")
    assert_stock_layout(tmp_path)
    again = load_processor(tmp_path)
    assert again.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    assert again.chat_template == processor.chat_template
    assert again.image_processor.to_dict() == processor.image_processor.to_dict()


def test_the_tiny_checkpoint_has_stock_names(tiny_model_dir):
    assert_stock_layout(tiny_model_dir)


def test_a_folder_saved_by_an_older_version_still_loads(tiny_model_dir, tmp_path):
    """Folders written before the stock layout named the image-only class in processor_config.json."""
    folder = tmp_path / "older"
    shutil.copytree(tiny_model_dir, folder)
    image_config = json.loads((folder / "preprocessor_config.json").read_text())
    image_config.pop("processor_class")
    (folder / "processor_config.json").write_text(
        json.dumps({"image_processor": image_config, "processor_class": "ImageOnlyQwen2_5_VLProcessor"})
    )
    (folder / "preprocessor_config.json").unlink()
    processor = load_processor(folder)
    assert processor.image_processor.merge_size == 2


def test_hub_layout_processor_config_loads(tiny_model_dir, tmp_path):
    """A folder whose tokenizer config carries no processor_class (some hub uploads) loads too."""
    folder = tmp_path / "hub-layout"
    shutil.copytree(tiny_model_dir, folder)
    tok_config = json.loads((folder / "tokenizer_config.json").read_text())
    tok_config.pop("processor_class", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_config))
    processor = load_processor(folder)
    assert processor.image_processor.merge_size == 2
    assert processor.tokenizer.convert_tokens_to_ids("<|image_pad|>") == processor.image_token_id


def test_missing_folder_says_what_to_do(tmp_path):
    missing = tmp_path / "nope" / "model"
    for load in (load_model, load_processor):
        with pytest.raises(ModelLoadError, match="does not exist") as err:
            load(missing)
        assert "judo tiny" in str(err.value)


def test_folder_without_config(tmp_path):
    (tmp_path / "weights").mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(tmp_path / "weights")


def test_file_instead_of_folder(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\0")
    with pytest.raises(ModelLoadError, match="is a file"):
        load_processor(path)


def test_not_a_qwen25vl_checkpoint(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ModelLoadError, match="'llama'.*Qwen2.5-VL"):
        load_model(tmp_path)


def test_unreachable_hub_id_offline_says_download(monkeypatch):
    # conftest switches the hub off (HF_HUB_OFFLINE=1) before anything is imported.
    for load in (load_model, load_processor):
        with pytest.raises(ModelLoadError) as err:
            load("nobody-here/not-a-qwen-model")
        message = str(err.value)
        assert "nobody-here/not-a-qwen-model" in message
        assert "hf download" in message and "local" in message


def test_empty_name():
    with pytest.raises(ModelLoadError, match="No model given"):
        load_model("  ")


def test_unknown_quantization(tiny_model_dir):
    with pytest.raises(ModelLoadError, match="Unknown quantization '3bit'"):
        load_model(tiny_model_dir, quantization="3bit")


@no_cuda
@pytest.mark.parametrize("quantization", ["4bit", "8bit"])
def test_quantization_needs_cuda(tiny_model_dir, quantization):
    with pytest.raises(ModelLoadError, match="CUDA GPU"):
        load_model(tiny_model_dir, quantization=quantization)


@no_cuda
def test_cuda_device_without_gpu(tiny_model_dir):
    with pytest.raises(ModelLoadError, match="no CUDA GPU"):
        load_model(tiny_model_dir, device="cuda")


def test_unknown_dtype(tiny_model_dir):
    with pytest.raises(ModelLoadError, match="Unknown dtype"):
        load_model(tiny_model_dir, device="cpu", dtype="float8")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_defaults_to_bf16(tiny_model_dir):
    model = load_model(tiny_model_dir, device="cuda")
    assert next(model.parameters()).dtype == torch.bfloat16 and model.device.type == "cuda"


@pytest.mark.parametrize(
    "text, hub",
    [
        ("Qwen/Qwen2.5-VL-7B-Instruct", True),
        ("outputs/judo-stage3", False),  # what train/ writes, present or not
        ("./ckpt", False),
        ("/abs/ckpt", False),
        ("~/models/x", False),
        ("tiny", False),
        ("a/b/c", False),
    ],
)
def test_one_rule_tells_a_hub_id_from_a_folder(text, hub, tmp_path):
    assert is_hub_id(text) is hub


def test_an_existing_folder_named_like_a_hub_id_is_local(tmp_path):
    (tmp_path / "owner" / "name").mkdir(parents=True)
    assert not is_hub_id("owner/name", tmp_path)
    assert is_hub_id("owner/name")
