"""HF best-practice baseline: LoRA (or with --full, full) fine-tuning with the Trainer's efficiency options.

Examples are tokenised without padding and padded per batch by DataCollatorForSeq2Seq (dynamic
padding), batches are drawn from groups of similar length (train_sampling_strategy="group_by_length",
the transformers 5 name of group_by_length), and with --precision bf16 the Trainer runs under bf16
autocast. Seq2SeqTrainer trains encoder-decoder models, Trainer decoder-only models.

    python benchmarks/baselines/hf_best_practice.py --model MODEL_DIR --data DATA_DIR --steps 4 \
        --precision bf16 --out hf_best_practice.json
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import datasets
from transformers import (
    DataCollatorForSeq2Seq,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    Trainer,
    TrainingArguments,
)

import hf_common as common


def main() -> None:
    args = common.parse_args(__doc__.splitlines()[0])
    model, tokenizer, seq2seq = common.load_model(args)
    model = common.prepare_parameters(model, args, seq2seq)

    records = common.read_jsonl(args.data / "train.jsonl")
    features = common.tokenize(records, tokenizer, seq2seq, args, pad_to_max_length=False)
    train_dataset = datasets.Dataset.from_list(features)

    # Pads input_ids with the pad token and labels with -100, to the longest example of each batch.
    collator = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=common.IGNORE_INDEX)
    counter = common.CountingCollator(collator)
    measure = common.MeasureCallback()
    with tempfile.TemporaryDirectory() as output_dir:
        settings = common.trainer_arguments(args, Path(output_dir))
        settings.update(train_sampling_strategy="group_by_length", bf16=args.precision == "bf16")
        if seq2seq:
            training_args = Seq2SeqTrainingArguments(**settings)
            trainer = Seq2SeqTrainer(model=model, args=training_args, train_dataset=train_dataset,
                                     data_collator=counter, processing_class=tokenizer, callbacks=[measure])
        else:
            training_args = TrainingArguments(**settings)
            trainer = Trainer(model=model, args=training_args, train_dataset=train_dataset,
                              data_collator=counter, processing_class=tokenizer, callbacks=[measure])
        runner = "hf_best_practice_full" if args.full else "hf_best_practice"
        common.train_and_report(trainer, model, counter, measure, args, runner=runner)


if __name__ == "__main__":
    main()
