"""Loading Qwen2.5-VL checkpoints (local folders or hub ids) for inference and training.

Every part of the project loads models through here so that dtype, device, quantization and the
processor workaround below are decided once. Failures become one `ModelLoadError` whose message says
what to do, instead of a traceback from deep inside transformers or huggingface_hub.

Processor without torchvision: transformers' ``Qwen2_5_VLProcessor`` also wants a video processor, which
needs torchvision, and torchvision cannot be installed next to the CPU torch wheel. We never feed videos,
so `ImageOnlyQwen2_5_VLProcessor` drops the video part (ProcessorMixin derives its parts from the
``__init__`` signature) and uses the PIL image processor. That class is a loading detail: every folder
the project writes (`save_processor`, also what ``trainer.save_model()`` calls) has the layout and the
stock class names of Qwen's own checkpoints, so stock `AutoProcessor`, vLLM and SGLang load it.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from transformers import Qwen2_5_VLProcessor

MODEL_TYPE = "qwen2_5_vl"
QUANTIZATIONS = ("4bit", "8bit")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name, nothing else
_DTYPES = {
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
}


class ModelLoadError(RuntimeError):
    """A checkpoint could not be loaded; the message is meant for the user and says what to do."""


# The class names Qwen's own Qwen2.5-VL checkpoints record, and the files they keep the processor in.
STOCK_PROCESSOR_CLASS = "Qwen2_5_VLProcessor"
STOCK_IMAGE_PROCESSOR_CLASS = "Qwen2VLImageProcessor"
PROCESSOR_FILES = ("preprocessor_config.json", "chat_template.json")
_NON_STOCK_FILES = ("processor_config.json", "chat_template.jinja")  # transformers 5's own layout


class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
    """``Qwen2_5_VLProcessor`` without the video processor, so it works where torchvision is missing."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs) -> list[str]:
        if push_to_hub:
            raise ValueError("Save the folder with save_processor() and upload it with `hf upload`.")
        return save_processor(self, save_directory)


def save_processor(processor: Any, out_dir: str | os.PathLike) -> list[str]:
    """Write a Qwen2.5-VL processor in the layout of Qwen's own checkpoints.

    ``tokenizer*.json`` (``processor_class``: ``Qwen2_5_VLProcessor``, the chat template inside), a flat ``preprocessor_config.json``
    (``image_processor_type``: ``Qwen2VLImageProcessor``) and ``chat_template.json``. transformers 4 and 5,
    vLLM and SGLang all read this layout; transformers 5's own ``processor_config.json`` is removed so that
    no file in the folder names a class that only this project knows.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = processor.tokenizer
    tokenizer._set_processor_class(STOCK_PROCESSOR_CLASS)
    if tokenizer.chat_template is None:  # Qwen keeps the template in tokenizer_config.json as well
        tokenizer.chat_template = processor.chat_template
    written = [str(p) for p in tokenizer.save_pretrained(out, save_jinja_files=False)]
    image_config = processor.image_processor.to_dict()
    image_config.update(
        image_processor_type=STOCK_IMAGE_PROCESSOR_CLASS, processor_class=STOCK_PROCESSOR_CLASS
    )
    files = {
        "preprocessor_config.json": image_config,
        "chat_template.json": {"chat_template": processor.chat_template},
    }
    for name, content in files.items():
        (out / name).write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(str(out / name))
    for name in _NON_STOCK_FILES:
        (out / name).unlink(missing_ok=True)
    return written


@functools.cache
def torchvision_available() -> bool:
    """True when torchvision imports (find_spec alone is not enough: a CUDA wheel next to CPU torch fails)."""
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - a mismatched build raises RuntimeError/OSError/ImportError
        return False
    return True


def default_device() -> str:
    """ "cuda" when a CUDA GPU is visible, else "cpu" (the project never relies on MPS)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _offline() -> bool:
    return any(
        os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


#: Folders train/ and `judo eval` write into: "outputs/judo-stage3" is a folder even when missing.
_LOCAL_ROOTS = {"outputs", "checkpoints", "runs", "models"}


def is_hub_id(checkpoint: str, base: str | os.PathLike | None = None) -> bool:
    """Whether a checkpoint string names a hub repository ("owner/name") rather than a local folder.

    The one rule every caller uses: an existing path (absolute, or relative to ``base`` or the working
    folder) is local; so is anything with a leading ``.``/``/``/``~``, more or fewer than one slash, or a
    folder train/ writes (``outputs/...``); what is left, ``owner/name``, is a hub id.
    """
    text = str(checkpoint).strip()
    path = Path(text).expanduser()
    if path.exists() or (base is not None and (Path(base) / path).exists()):
        return False
    if text.startswith((".", "/", "~")) or not _HUB_ID.match(text):
        return False
    return text.split("/", 1)[0] not in _LOCAL_ROOTS


def _resolve(name_or_path: str | os.PathLike) -> tuple[str, bool]:
    """Return (string to pass to from_pretrained, is_local) or raise for a missing/invalid local folder."""
    text = str(name_or_path).strip()
    if not text:
        raise ModelLoadError(
            "No model given: pass a local checkpoint folder or a hub id like 'Qwen/Qwen2.5-VL-7B-Instruct'."
        )
    if is_hub_id(text):
        return text, False
    path = Path(text).expanduser()
    if not path.exists():
        raise ModelLoadError(
            f"Checkpoint folder {path} does not exist. Train it (see train/), build a tiny test checkpoint "
            f"with `judo tiny {path}`, or point at another folder or a hub id."
        )
    if not path.is_dir():
        raise ModelLoadError(f"{path} is a file; pass the checkpoint folder that contains config.json.")
    if not (path / "config.json").is_file():
        raise ModelLoadError(
            f"{path} has no config.json, so it is not a saved checkpoint. Pass the folder "
            "written by save_pretrained()/`judo tiny` (the one holding config.json)."
        )
    return str(path), True


def _hub_error(name: str, exc: BaseException) -> ModelLoadError:
    """Explain a failed hub lookup: offline mode, no network, unknown repo or gated access."""
    if _offline():
        how = (
            "the hub is switched off here (HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE) and the model is not in "
            "the local cache"
        )
    else:
        first_line = (str(exc).splitlines() or [""])[0][:200]
        how = f"the hub could not provide it ({type(exc).__name__}: {first_line})"
    folder = f"./models/{name.split('/')[-1]}"
    return ModelLoadError(
        f"Cannot load {name!r}: no local folder has that name and {how}. Download it once where the hub "
        f"is reachable (`hf download {name} --local-dir {folder}`) and pass that folder instead, "
        "or pass any local Qwen2.5-VL checkpoint folder."
    )


def _check_model_type(source: str, is_local: bool) -> None:
    """Refuse non-Qwen2.5-VL local checkpoints early, with their actual type in the message."""
    if not is_local:
        return
    try:
        config = json.loads((Path(source) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"{source}/config.json is unreadable ({exc}); the checkpoint is damaged."
        ) from exc
    model_type = config.get("model_type")
    if model_type != MODEL_TYPE:
        raise ModelLoadError(
            f"{source} holds a {model_type!r} model; JUDO needs a Qwen2.5-VL checkpoint "
            f"(model_type {MODEL_TYPE!r})."
        )


def _saved_processor_class(source: str, is_local: bool) -> str | None:
    """The processor class name recorded in a local checkpoint, if any."""
    if not is_local:
        return None
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        path = Path(source) / name
        if path.is_file():
            try:
                value = json.loads(path.read_text(encoding="utf-8")).get("processor_class")
            except (OSError, ValueError):
                continue
            if value:
                return str(value)
    return None


def load_processor(name_or_path: str | os.PathLike) -> Any:
    """Load the Qwen2.5-VL processor (tokenizer + image processor + chat template) of a checkpoint.

    `ImageOnlyQwen2_5_VLProcessor` without torchvision, and for folders saved from it (their config names
    that class, which `AutoProcessor` does not know); otherwise `AutoProcessor` (the full processor).
    """
    source, is_local = _resolve(name_or_path)
    _check_model_type(source, is_local)
    try:
        saved_class = _saved_processor_class(source, is_local)
        if not torchvision_available() or saved_class == ImageOnlyQwen2_5_VLProcessor.__name__:
            return ImageOnlyQwen2_5_VLProcessor.from_pretrained(source)
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(source)
    except ModelLoadError:
        raise
    except (OSError, ValueError) as exc:
        if not is_local:
            raise _hub_error(source, exc) from exc
        raise ModelLoadError(
            f"Cannot load the processor from {source}: {exc}. The folder needs the "
            "tokenizer files and preprocessor_config.json saved with the model."
        ) from exc


def _torch_dtype(dtype: Any, device: str):
    """bf16 on CUDA, fp32 elsewhere, unless the caller names a dtype."""
    import torch

    if dtype is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    key = str(dtype).lower().removeprefix("torch.")
    if key not in _DTYPES:
        raise ModelLoadError(f"Unknown dtype {dtype!r}; use one of bfloat16, float16, float32.")
    return getattr(torch, _DTYPES[key])


def _quantization_config(quantization: str | None, device: str, dtype):
    """A BitsAndBytesConfig for "4bit"/"8bit", or None. bitsandbytes kernels need CUDA."""
    if quantization is None or str(quantization).lower() in {"", "none"}:
        return None
    q = str(quantization).lower()
    if q not in QUANTIZATIONS:
        raise ModelLoadError(f"Unknown quantization {quantization!r}; use None, '4bit' or '8bit'.")
    if not device.startswith("cuda"):
        raise ModelLoadError(
            f"{q} quantization runs on a CUDA GPU (bitsandbytes) but the device is {device!r}. "
            "Drop the quantization option to run in full precision on CPU."
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelLoadError(
            f"{q} quantization needs the bitsandbytes package: `pip install -r requirements.txt`."
        )
    from transformers import BitsAndBytesConfig

    if q == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=dtype,
            bnb_4bit_use_double_quant=True,
        )
    return BitsAndBytesConfig(load_in_8bit=True)


def load_model(
    name_or_path: str | os.PathLike,
    quantization: str | None = None,
    device: str | None = None,
    dtype: Any = None,
):
    """Load a Qwen2.5-VL checkpoint as ``Qwen2_5_VLForConditionalGeneration`` in eval mode.

    ``device`` defaults to `default_device()`; ``dtype`` to bf16 on CUDA and fp32 on CPU;
    ``quantization`` "4bit"/"8bit" loads through bitsandbytes (CUDA only).
    """
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    device = str(device or default_device())
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"Device {device!r} was asked for but no CUDA GPU is visible; use device='cpu'.")
    torch_dtype = _torch_dtype(dtype, device)
    quant = _quantization_config(quantization, device, torch_dtype)
    source, is_local = _resolve(name_or_path)
    _check_model_type(source, is_local)
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if quant is not None:
        kwargs.update(quantization_config=quant, device_map={"": device})
    elif device != "cpu":
        kwargs["device_map"] = {"": device}
    try:
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        if not is_local:
            raise _hub_error(source, exc) from exc
        raise ModelLoadError(f"Cannot load the model weights from {source}: {exc}") from exc
    except SafetensorError as exc:  # a truncated or overwritten model.safetensors
        raise ModelLoadError(
            f"Cannot load the model weights from {source}: a .safetensors file is damaged or incomplete ({exc}); "
            "copy or save the checkpoint again."
        ) from exc
    return model.eval()


def check_processor(processor: Any, model_config: Any) -> None:
    """Refuse a processor that cannot feed this model images (raise `ModelLoadError` saying what is missing).

    A checkpoint saved without ``tokenizer.json`` still loads, with a tokenizer of a dozen special tokens:
    ordinary text encodes to nothing and ``<|image_pad|>`` gets another id than the model's
    ``image_token_id``, so every inspection would fail later with "Image features and image tokens do not
    match". The image and vision tokens must map to the model's ids, and a chat template must be there.
    """
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is None:
        raise ModelLoadError(
            "the checkpoint's processor has no tokenizer; save the processor with the model."
        )
    template = getattr(processor, "chat_template", None) or getattr(tokenizer, "chat_template", None)
    if not template:
        raise ModelLoadError(
            "the checkpoint has no chat template (chat_template.jinja): save the processor with the model."
        )
    expected = {
        getattr(processor, "image_token", "<|image_pad|>"): getattr(model_config, "image_token_id", None),
        "<|vision_start|>": getattr(model_config, "vision_start_token_id", None),
        "<|vision_end|>": getattr(model_config, "vision_end_token_id", None),
    }
    for token, model_id in expected.items():
        got = tokenizer.convert_tokens_to_ids(token)
        if model_id is not None and got != model_id:
            raise ModelLoadError(
                f"the tokenizer maps {token} to {got}, but the model expects {model_id}: the checkpoint's "
                "tokenizer files (tokenizer.json) are missing or belong to another model."
            )
    if not tokenizer("Is there any defect?", add_special_tokens=False)["input_ids"]:
        raise ModelLoadError("the tokenizer encodes ordinary text to nothing: tokenizer.json is missing.")
