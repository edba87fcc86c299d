"""Stage 3 of JUDO (domain-oriented GRPO) and the "Base GRPO" ablation, with TRL's GRPOTrainer.

    torchrun --nproc_per_node 4 train/grpo.py --config train/recipes/stage3.yaml      # JUDO
    torchrun --nproc_per_node 4 train/grpo.py --config train/recipes/base_grpo.yaml   # Base GRPO

The dataset is a `judo data stage3` folder: conversational `prompt` + `images` and the truth columns
`answer`, `seg`, `rationale` (+ `options`) that the rewards read. The recipe names the rewards
(`reward_funcs`, from judo.rewards.REWARDS) and their weights (`reward_weights`, same order). TRL 1.16
changed defaults that matter here, so every recipe sets `beta` and `loss_type` explicitly, and
`per_device_train_batch_size` counts completions, not prompts (see the recipe comments).
Rerunning a recipe resumes from the newest checkpoint in output_dir.
"""

import time

from common import JudoArguments, check_start, model_init_kwargs, train_and_save
from trl import GRPOConfig, GRPOTrainer, ModelConfig, TrlParser, get_peft_config

from judo.data.datasets import load_grpo_dataset
from judo.models import load_processor
from judo.rewards import get_rewards

VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")


def main(training_args, model_args, judo_args):
    started = time.time()
    check_start(model_args, judo_args)
    if not judo_args.reward_funcs:
        raise SystemExit("list the rewards in the recipe: reward_funcs: [domain_reward, seg_reward, ...]")
    if training_args.reward_weights and len(training_args.reward_weights) != len(judo_args.reward_funcs):
        raise SystemExit(
            f"reward_weights has {len(training_args.reward_weights)} values for "
            f"{len(judo_args.reward_funcs)} reward_funcs"
        )
    training_args.model_init_kwargs = model_init_kwargs(model_args, training_args)

    dataset = load_grpo_dataset(judo_args.data_dir, prompt_style=judo_args.prompt_style)
    processor = load_processor(model_args.model_name_or_path)
    # GRPO pads prompts on the left; TRL sets this only on processors it loads itself, and a right-padded
    # processor would misalign Qwen's image-token positions for batches of prompts of different lengths.
    processor.tokenizer.padding_side = "left"
    processor.tokenizer.truncation_side = "left"
    # A sampled <|image_pad|> or <|vision_start|> in a completion would be read as an image that is not
    # there when the completion is scored (Qwen's 3D positions count them): never sample them.
    vision_ids = [processor.tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS]
    training_args.generation_kwargs = {
        "suppress_tokens": [i for i in vision_ids if i is not None],
        **(training_args.generation_kwargs or {}),
    }

    trainer = GRPOTrainer(
        model=model_args.model_name_or_path,
        reward_funcs=get_rewards(judo_args.reward_funcs),
        args=training_args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=get_peft_config(model_args),
    )
    train_and_save(trainer, processor, model_args, training_args, judo_args, started)


if __name__ == "__main__":
    parser = TrlParser((GRPOConfig, ModelConfig, JudoArguments))
    main(*parser.parse_args_and_config())
