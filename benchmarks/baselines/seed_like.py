"""Seed-like baseline: LoRA fine-tuning as a plain script would run the reference configuration.

Every example is padded to the maximum lengths when it is tokenised (512 prompt tokens, 128 answer
tokens by default), training runs in float32, and batches are drawn in random order. The model is
trained with Seq2SeqTrainer for encoder-decoder models and Trainer for decoder-only models.

    python benchmarks/baselines/seed_like.py --model MODEL_DIR --data DATA_DIR --steps 4 --out seed_like.json
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import datasets
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, Trainer, TrainingArguments, default_data_collator

import hf_common as common


def main() -> None:
    args = common.parse_args(__doc__.splitlines()[0])
    model, tokenizer, seq2seq = common.load_model(args)
    model = common.prepare_parameters(model, args, seq2seq)

    records = common.read_jsonl(args.data / "train.jsonl")
    features = common.tokenize(records, tokenizer, seq2seq, args, pad_to_max_length=True)
    train_dataset = datasets.Dataset.from_list(features)

    counter = common.CountingCollator(default_data_collator)
    measure = common.MeasureCallback()
    with tempfile.TemporaryDirectory() as output_dir:
        settings = common.trainer_arguments(args, Path(output_dir))
        if seq2seq:
            training_args = Seq2SeqTrainingArguments(**settings)
            trainer = Seq2SeqTrainer(model=model, args=training_args, train_dataset=train_dataset,
                                     data_collator=counter, callbacks=[measure])
        else:
            training_args = TrainingArguments(**settings)
            trainer = Trainer(model=model, args=training_args, train_dataset=train_dataset,
                              data_collator=counter, callbacks=[measure])
        common.train_and_report(trainer, model, counter, measure, args, runner="seed_like")


if __name__ == "__main__":
    main()
