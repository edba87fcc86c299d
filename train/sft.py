"""Stages 1 and 2 of JUDO: supervised fine-tuning of Qwen2.5-VL on a `judo data` folder.

    # stage 1 (juxtaposed seg + explanation), stage 2 (domain Q&A), on one node of 4 GPUs:
    torchrun --nproc_per_node 4 train/sft.py --config train/recipes/stage1.yaml
    torchrun --nproc_per_node 4 train/sft.py --config train/recipes/stage2.yaml
    # any recipe field can be overridden on the command line, e.g. --num_train_epochs 1

Rows are conversational prompt-completion pairs with an `images` list (see judo.data.datasets), so
TRL computes the loss on the completion only. The prompts were made by judo.prompts, the same code
that builds them at evaluation and serving time, with images at 448x448 (16x16 vision tokens).
Rerunning a recipe resumes from the newest checkpoint in output_dir.
"""

import time

from common import JudoArguments, check_start, model_init_kwargs, train_and_save
from trl import ModelConfig, SFTConfig, SFTTrainer, TrlParser, get_peft_config

from judo.data.datasets import load_sft_dataset
from judo.models import load_processor


def main(training_args, model_args, judo_args):
    started = time.time()
    check_start(model_args, judo_args)
    training_args.model_init_kwargs = model_init_kwargs(model_args, training_args)
    if training_args.max_length is not None:
        print(f"note: max_length={training_args.max_length} may cut image tokens; the recipes use null")

    dataset = load_sft_dataset(judo_args.data_dir)
    processor = load_processor(model_args.model_name_or_path)

    trainer = SFTTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=get_peft_config(model_args),
    )
    train_and_save(trainer, processor, model_args, training_args, judo_args, started)


if __name__ == "__main__":
    parser = TrlParser((SFTConfig, ModelConfig, JudoArguments))
    main(*parser.parse_args_and_config())
