"""What the SFT and GRPO scripts share: our recipe fields, model loading kwargs, resume, saving.

Kept next to the scripts (not in the `judo` package) because only training needs it; the scripts
import it as a sibling module, which works for `python`, `torchrun` and `accelerate launch` alike.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from judo.models import is_hub_id, save_processor

#: Written into an output folder once its stage has finished and saved; launch_h200.sh skips such stages.
DONE_FILE = "judo_training.json"
#: Every logged step as a JSON line (losses, rewards, tokens, peak GPU memory), appended across resumes.
LOG_FILE = "judo_log.jsonl"


@dataclass
class JudoArguments:
    """The recipe fields TRL does not have: where the built data is, which rewards, LoRA merging.

    Reward *weights* are TRL's own `reward_weights` (GRPOConfig), listed in the same order.
    """

    data_dir: str = field(
        default="", metadata={"help": "a `judo data` output folder (stage1, stage2 or stage3)"}
    )
    stage: str = field(
        default="", metadata={"help": "name written into judo_training.json (stage1, base-grpo, ...)"}
    )
    reward_funcs: list[str] = field(
        default_factory=list,
        metadata={"help": "GRPO only: names from judo.rewards.REWARDS, e.g. domain_reward seg_reward ..."},
    )
    prompt_style: str | None = field(
        default=None,
        metadata={
            "help": "GRPO only: rebuild the stored prompts with judo.prompts.inspection_prompt(style=...) "
            "(None keeps the stage-3 'judo' prompts)"
        },
    )
    merge_lora: bool = field(
        default=True,
        metadata={
            "help": "with --use_peft: merge the adapter into a full bf16 model in output_dir at the end, "
            "so the next stage and the app load a plain checkpoint"
        },
    )


def model_init_kwargs(model_args, training_args) -> dict:
    """from_pretrained kwargs for TRL's string-model loading (dtype, attention, 4/8-bit on a workstation)."""
    from accelerate import PartialState
    from trl import get_quantization_config

    kwargs = {
        "revision": model_args.model_revision,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype,
    }
    quantization = get_quantization_config(model_args)
    if quantization is not None:  # a k-bit model must sit whole on this process's GPU
        kwargs.update(quantization_config=quantization, device_map={"": PartialState().local_process_index})
    if training_args.model_init_kwargs:
        kwargs.update(training_args.model_init_kwargs)
    return {k: v for k, v in kwargs.items() if v is not None}


def check_start(model_args, judo_args) -> None:
    """Fail early, in words, when the recipe points at something that is not there."""
    if not judo_args.data_dir:
        raise SystemExit("set data_dir in the recipe (or --data_dir): a `judo data` output folder")
    source = model_args.model_name_or_path
    if not source:
        raise SystemExit("set model_name_or_path in the recipe (or --model_name_or_path)")
    if not is_hub_id(source) and not Path(source).is_dir():
        raise SystemExit(f"model_name_or_path {source} does not exist: train the previous stage first")


def last_checkpoint(output_dir: str, say=print) -> str | None:
    """The newest *complete* `checkpoint-N` folder in output_dir (the resume point), or None.

    The Trainer writes `trainer_state.json` last, so a run killed while saving (a 7B ZeRO-3 checkpoint
    takes minutes) leaves a newer folder without it; resuming from that one would fail or load half a
    state, so it is passed over, and said so.
    """
    from transformers.trainer_utils import sort_checkpoints

    if not Path(output_dir).is_dir():
        return None
    for path in reversed(sort_checkpoints(output_dir)):  # newest first, by step number
        if Path(path, "trainer_state.json").is_file():
            return path
        say(f"skipping {path}: incomplete (no trainer_state.json; the run stopped while saving it)")
    return None


def log_file_callback(output_dir: str):
    """A TrainerCallback that appends each log entry to output_dir/judo_log.jsonl with the step and this
    process's peak GPU memory (`peak_memory_gib`): TRL prints its logs, this keeps them readable by tools."""
    from transformers import TrainerCallback

    class LogFile(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            import torch

            entry = {"step": state.global_step, **logs}
            if torch.cuda.is_available():
                entry["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            with open(Path(output_dir, LOG_FILE), "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, default=float) + "\n")

    return LogFile()


def train_and_save(trainer, processor, model_args, training_args, judo_args, started: float) -> None:
    """Train, resuming from the newest checkpoint in output_dir when a run was interrupted, then save."""
    trainer.add_callback(log_file_callback(training_args.output_dir))
    resume = training_args.resume_from_checkpoint or last_checkpoint(
        training_args.output_dir, say=trainer.accelerator.print
    )
    if resume:
        trainer.accelerator.print(f"resuming from {resume}")
    trainer.train(resume_from_checkpoint=resume)
    finish(trainer, processor, model_args, training_args, judo_args, started)
    trainer.accelerator.print(f"saved {judo_args.stage or 'model'} to {training_args.output_dir}")


def finish(trainer, processor, model_args, training_args, judo_args, started: float) -> None:
    """Save the model and the processor together (the next stage starts from this folder), merge a
    LoRA adapter when asked, and mark the stage done."""
    out = training_args.output_dir
    trainer.save_model(out)
    if trainer.accelerator.is_main_process:
        save_processor(processor, out)  # Qwen's own layout and class names, whatever class `processor` is
    trainer.accelerator.wait_for_everyone()
    if model_args.use_peft and judo_args.merge_lora and trainer.accelerator.is_main_process:
        merge_adapter(model_args.model_name_or_path, out)
    if trainer.accelerator.is_main_process:
        record = {
            "stage": judo_args.stage,
            "data_dir": judo_args.data_dir,
            "base": model_args.model_name_or_path,
            "global_step": trainer.state.global_step,
            "processes": trainer.accelerator.num_processes,
            **distribution(trainer),
            "lora_merged": bool(model_args.use_peft and judo_args.merge_lora),
            "minutes": round((time.time() - started) / 60, 2),
            "judo": asdict(judo_args),
        }
        Path(out, DONE_FILE).write_text(json.dumps(record, indent=1) + "\n")
    trainer.accelerator.wait_for_everyone()


def distribution(trainer) -> dict:
    """How the run was spread, read from the trainer's own state: whether it trained a DeepSpeed engine,
    that engine's ZeRO stage (None without DeepSpeed) and the world size (processes taking part)."""
    engine = trainer.model_wrapped if trainer.is_deepspeed_enabled else None
    stage = getattr(engine, "zero_optimization_stage", None)
    return {
        "deepspeed": engine is not None,
        "zero_stage": int(stage()) if stage else None,
        "world_size": int(engine.world_size if engine is not None else trainer.args.world_size),
    }


def merge_adapter(base: str, out: str) -> None:
    """Fold the LoRA adapter saved in `out` into a bf16 copy of `base`; keep the adapter in out/adapter."""
    import shutil

    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    out_path = Path(out)
    adapter = out_path / "adapter"
    adapter.mkdir(exist_ok=True)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        if (out_path / name).exists():
            shutil.move(str(out_path / name), adapter / name)
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = AutoModelForImageTextToText.from_pretrained(base, dtype=dtype)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)
