"""Shared parts of the baseline training scripts: options, data, model, measurements, result file.

Built only on public transformers, PEFT and datasets APIs, so the baselines show what a user who does
not use physlora would write. Each script imports this module from its own folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import torch
from peft import LoraConfig, TaskType, get_peft_model
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer, TrainerCallback

IGNORE_INDEX = -100
DEFAULT_PROMPT = "Answer the physics question.\nQuestion: {question}\nAnswer:"


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the options every baseline takes; the defaults are those of the reference configuration."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", type=Path, required=True, help="Local model folder (config.json and weights).")
    parser.add_argument("--tokenizer", type=Path, default=None, help="Tokenizer folder; defaults to --model.")
    parser.add_argument("--data", type=Path, required=True, help="Folder containing train.jsonl.")
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the measurements.")
    parser.add_argument("--adapter-out", type=Path, default=None, help="Folder for the trained LoRA adapter.")
    parser.add_argument("--steps", type=int, default=8, help="Optimizer steps to run.")
    parser.add_argument("--batch-size", type=int, default=4, help="Examples per micro-batch.")
    parser.add_argument("--accumulation", type=int, default=4, help="Micro-batches per optimizer step.")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--warmup-steps", type=int, default=500)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--lora-alpha", type=float, default=32)
    parser.add_argument("--lora-dropout", type=float, default=0.1)
    parser.add_argument("--target-modules", nargs="+", default=None, help="Defaults to q v (T5) or q_proj v_proj.")
    parser.add_argument(
        "--max-source-length", type=int, default=512, help="Prompt tokens (prompt plus answer for decoder-only models)."
    )
    parser.add_argument("--max-target-length", type=int, default=128, help="Answer tokens.")
    parser.add_argument("--prompt-template", default=DEFAULT_PROMPT, help="Prompt text; {question} is replaced.")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="Mixed precision of the Trainer.")
    parser.add_argument("--full", action="store_true", help="Train every parameter instead of a LoRA adapter.")
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_model(args: argparse.Namespace):
    """Load the model in float32 and its tokenizer; return (model, tokenizer, is_seq2seq)."""
    config = AutoConfig.from_pretrained(args.model)
    seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    model_class = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    model = model_class.from_pretrained(args.model, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or args.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, seq2seq


def prepare_parameters(model, args: argparse.Namespace, seq2seq: bool):
    """Wrap the model with LoRA, or with --full leave every parameter trainable."""
    if args.full:
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model
    targets = args.target_modules or (["q", "v"] if seq2seq else ["q_proj", "v_proj"])
    lora = LoraConfig(
        task_type=TaskType.SEQ_2_SEQ_LM if seq2seq else TaskType.CAUSAL_LM,
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=targets,
    )
    torch.manual_seed(args.seed)
    return get_peft_model(model, lora)


def tokenize(
    records: list[dict], tokenizer, seq2seq: bool, args: argparse.Namespace, pad_to_max_length: bool
) -> list[dict]:
    """Turn records into input_ids, attention_mask and labels; labels are -100 where no loss is taken.

    With `pad_to_max_length` every example is padded to --max-source-length (and, for seq2seq labels,
    --max-target-length) here, so every batch has the same shape.
    """
    features = []
    for record in records:
        prompt = args.prompt_template.replace("{question}", record["question"])
        target = record.get("target") or record["answer"]
        if seq2seq:
            feature = _seq2seq_feature(tokenizer, prompt, target, args, pad_to_max_length)
        else:
            feature = _causal_feature(tokenizer, prompt, target, args, pad_to_max_length)
        features.append(feature)
    return features


def _seq2seq_feature(tokenizer, prompt: str, target: str, args, pad: bool) -> dict:
    padding = "max_length" if pad else False
    source = tokenizer(prompt, max_length=args.max_source_length, truncation=True, padding=padding)
    labels = tokenizer(text_target=target, max_length=args.max_target_length, truncation=True, padding=padding).input_ids
    labels = [IGNORE_INDEX if token == tokenizer.pad_token_id else token for token in labels]
    return {"input_ids": source.input_ids, "attention_mask": source.attention_mask, "labels": labels}


def _causal_feature(tokenizer, prompt: str, target: str, args, pad: bool) -> dict:
    prompt_ids = tokenizer(prompt).input_ids  # with the tokenizer's BOS when it adds one
    answer_ids = tokenizer(" " + target, add_special_tokens=False).input_ids[: args.max_target_length - 1]
    answer_ids = answer_ids + [tokenizer.eos_token_id]
    prompt_ids = prompt_ids[: max(1, args.max_source_length - len(answer_ids))]
    input_ids = prompt_ids + answer_ids
    labels = [IGNORE_INDEX] * len(prompt_ids) + answer_ids
    attention_mask = [1] * len(input_ids)
    if pad:
        padding = args.max_source_length - len(input_ids)
        input_ids = input_ids + [tokenizer.pad_token_id] * padding
        attention_mask = attention_mask + [0] * padding
        labels = labels + [IGNORE_INDEX] * padding
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


class CountingCollator:
    """Wrap a data collator and count the examples, non-padding input tokens and supervised tokens it batches."""

    def __init__(self, collator) -> None:
        self.collator = collator
        self.examples = 0
        self.input_tokens = 0
        self.supervised_tokens = 0

    def __call__(self, features: list[dict]) -> dict:
        batch = self.collator(features)
        self.examples += batch["input_ids"].shape[0]
        self.input_tokens += int(batch["attention_mask"].sum())
        self.supervised_tokens += int((batch["labels"] != IGNORE_INDEX).sum())
        return batch


def reset_peak_memory() -> str:
    """Start a new memory high-water mark; return its kind.

    On CUDA this resets torch's allocator statistics. On Linux, writing 5 to /proc/self/clear_refs
    resets the process's peak resident set size (VmHWM), so model loading does not count. Elsewhere the
    peak covers the whole process.
    """
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        return "cuda_max_allocated"
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return "rss_training"
    except OSError:
        return "rss_process"


def peak_memory_bytes(kind: str) -> int:
    if kind == "cuda_max_allocated":
        return int(torch.cuda.max_memory_allocated())
    if kind == "rss_training":
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024


class MeasureCallback(TrainerCallback):
    """Time the optimizer steps, record each step's logged loss and the training-time memory peak.

    The training time runs from the start of the first optimizer step to the end of the last one, so
    it covers the collation of every batch after the first accumulation window. Each step's own time
    runs from its on_step_begin to its on_step_end, which excludes the collation of its batches.
    """

    def __init__(self) -> None:
        self.memory_kind = "rss_process"
        self.first_step_start: float | None = None
        self.step_start: float | None = None
        self.last_step_end: float | None = None
        self.step_times: list[float] = []
        self.peak_memory = 0
        self.losses: list[float] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.memory_kind = reset_peak_memory()

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_start = time.perf_counter()
        if self.first_step_start is None:
            self.first_step_start = self.step_start

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.last_step_end = time.perf_counter()
        if self.step_start is not None:
            self.step_times.append(self.last_step_end - self.step_start)
        self.peak_memory = max(self.peak_memory, peak_memory_bytes(self.memory_kind))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))


def trainer_arguments(args: argparse.Namespace, output_dir: Path) -> dict:
    """TrainingArguments values shared by the baselines: schedule, optimizer, logging, no saving."""
    return {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": args.batch_size,
        "gradient_accumulation_steps": args.accumulation,
        "learning_rate": args.learning_rate,
        "warmup_steps": args.warmup_steps,
        "weight_decay": args.weight_decay,
        "max_grad_norm": args.max_grad_norm,
        "max_steps": args.steps,
        "lr_scheduler_type": "linear",
        "optim": "adamw_torch",
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "seed": args.seed,
        "use_cpu": not torch.cuda.is_available(),
    }


def train_and_report(trainer, model, counter: CountingCollator, measure: MeasureCallback, args, runner: str) -> None:
    """Run `trainer`, save the adapter when --adapter-out is set, and write the measurement file."""
    trainer.train()
    if args.adapter_out is not None and not args.full:
        model.save_pretrained(str(args.adapter_out))
    train_time = (measure.last_step_end or 0.0) - (measure.first_step_start or 0.0)
    total = sum(parameter.numel() for parameter in model.parameters())
    trainable = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
    result = {
        "runner": runner,
        "steps": trainer.state.global_step,
        "examples": counter.examples,
        "input_tokens": counter.input_tokens,
        "supervised_tokens": counter.supervised_tokens,
        "train_time_s": train_time,
        "step_times_s": measure.step_times,
        "peak_memory_bytes": measure.peak_memory,
        "peak_memory_kind": measure.memory_kind,
        "step_losses": measure.losses,
        "last_step_loss": measure.losses[-1] if measure.losses else None,
        "precision": args.precision,
        "fine_tuning": "full" if args.full else "lora",
        "params": {"total": total, "trainable": trainable},
        "adapter_dir": str(args.adapter_out) if args.adapter_out is not None and not args.full else None,
        "threads": torch.get_num_threads(),
        "pid": os.getpid(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
