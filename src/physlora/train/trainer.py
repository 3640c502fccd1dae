"""The training loop: LoRA fine-tuning into one run folder, with checkpoints, resume and measurements.

`train_run` is the entry point. Vocabulary: a step is one optimizer update, a micro-batch is one forward
and backward pass, and an accumulation window is the micro-batches of one step.

Test hook: the environment variable PHYSLORA_TEST_NAN_AT_STEP=N makes the loss NaN at optimizer step N,
so tests can check how a numerical failure stops a run. It is not meant for any other use.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import time
from pathlib import Path
from typing import Callable

import torch

from physlora.config.loading import dump_yaml
from physlora.config.schema import RunConfig
from physlora.errors import RunFolderError, TrainingError
from physlora.io import create_folder, write_text_atomic
from physlora.models.methods import apply_method_defaults
from physlora.models.scoring import mean_loss
from physlora.train import checkpoint as checkpoints
from physlora.train import continual
from physlora.train import early_stopping as stopping
from physlora.train import summary as summaries
from physlora.train.batching import (
    MicroBatch,
    accumulation_windows,
    encode_records,
    epoch_batches,
    example_length,
    make_micro_batch,
    micro_batches_per_epoch,
    pack_window,
)
from physlora.train.distributed import Processes
from physlora.train.engines import build_engine
from physlora.train.launch import resume_command
from physlora.train.metrics import METRICS_FILE, MetricsWriter, finite_or_none, keep_until_checkpoint, peak_memory
from physlora.train.optim import build_optimizer, build_scheduler, steps_per_epoch, total_steps
from physlora.train.setup import (
    CONFIG_FILE,
    build_adapted_model,
    check_resumable_run_folder,
    load_splits,
    prepare_fresh_run_folder,
)
from physlora.train.signals import StopRequest, stop_on_signals
from physlora.train.state import ProgressEvent, TrainerState, finished_summary
from physlora.train.trackers import open_metrics_writer

logger = logging.getLogger(__name__)

NAN_HOOK_ENV = "PHYSLORA_TEST_NAN_AT_STEP"
ADAPTER_DIR = "adapter"


def train_run(
    config: RunConfig,
    *,
    resume: bool = False,
    max_steps: int | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    overwrite: bool = False,
) -> dict:
    """Train the LoRA adapter of `config` into `config.output.dir` and return the summary.

    `resume` continues from the last complete checkpoint (a finished run returns its summary unchanged),
    `max_steps` overrides `training.max_steps`, and `progress` is called after every optimizer step.
    A new run into a folder that already has metrics or checkpoints raises RunFolderError, unless
    `overwrite` is set: then the earlier run's metrics, summary, adapter and checkpoints are deleted.
    Raises TrainingError when the loss becomes NaN or infinite, and the last checkpoint stays.
    """
    trainer = Trainer(config, resume=resume, max_steps=max_steps, progress=progress, overwrite=overwrite)
    return trainer.run()


class Trainer:
    """One training session of a run folder. `run` does the work, and the trained model stays in `model`."""

    def __init__(self, config: RunConfig, *, resume=False, max_steps=None, progress=None, overwrite=False) -> None:
        self.config = config.model_copy(deep=True)
        if max_steps is not None:
            self.config.training.max_steps = max_steps
        apply_method_defaults(self.config)
        self.training = self.config.training
        self.run_dir = Path(self.config.output.dir)
        self.resume = resume
        self.overwrite = overwrite
        # Under accelerate launch or torchrun only the first process writes files, logs and progress.
        self.processes = Processes.from_environment()
        self.progress = progress if progress is not None and self.processes.is_main else (lambda event: None)
        self.device_type = "cuda" if torch.cuda.is_available() else "cpu"
        nan_step = os.environ.get(NAN_HOOK_ENV)
        self.nan_at_step = int(nan_step) if nan_step else None
        self.state = TrainerState()
        self.epoch_records: list[dict] = []
        self.metrics: MetricsWriter | None = None
        self.checkpoint: Path | None = None
        self.parent = continual.resolve_parent(self.config)
        self.early_stopping = stopping.EarlyStopping.from_records(self.training, [])

    def run(self) -> dict:
        if self.resume:
            check_resumable_run_folder(self.run_dir)
            done = finished_summary(self.run_dir, self.training.max_steps)
            if done is not None:
                logger.info("%s already finished (status %s, %d steps); nothing to resume",
                            self.run_dir, done["status"], done["steps"])
                return done
        elif self.processes.is_main:
            prepare_fresh_run_folder(self.run_dir, self.overwrite)
        self.processes.wait()  # the other processes start once the folder is prepared

        self._setup()
        if self.resume:
            self._restore_checkpoint()
        self.session_start = time.perf_counter()
        self.elapsed_before = self.state.elapsed_s
        try:
            self._open_metrics()
            with stop_on_signals() as stop_request:
                status = self._train(stop_request)
            return self._finish(status, stop_request)
        finally:
            if self.metrics is not None:
                self.metrics.close()

    # ----- setup -----

    def _setup(self) -> None:
        if self.training.num_threads:
            torch.set_num_threads(self.training.num_threads)
        train_records, validation_records = load_splits(self.config)
        stopping.check_validation_records(self.training, validation_records)
        if self.parent is not None:
            train_records = continual.add_replay(self.parent, self.config, train_records)
        adapted = build_adapted_model(self.config, self.device_type)
        if self.parent is not None:
            continual.load_parent_weights(adapted.model, self.parent)
        self.model, self.family, self.precision = adapted.model, adapted.family, adapted.precision
        self.params = adapted.params
        self.pad_token_id = adapted.tokenizer.pad_token_id

        encode = dict(
            tokenizer=adapted.tokenizer, family=self.family, prompt_template=self.config.model.prompt_template,
            max_seq_length=self.training.max_seq_length, max_target_length=self.training.max_target_length,
        )
        self.train_examples = encode_records(train_records, **encode)
        self.validation_examples = encode_records(validation_records, **encode)
        self.lengths = [example_length(example) for example in self.train_examples]

        self.micro_batches = micro_batches_per_epoch(len(self.train_examples), self.training.batch_size)
        self.steps_per_epoch = steps_per_epoch(self.micro_batches, self.training.gradient_accumulation_steps)
        self.total_steps = total_steps(self.micro_batches, self.training)
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)

        self.engine = build_engine(self.model, self.family, self.processes, self.training, self.precision.name,
                                   self.config.lora.method)
        self.optimizer = self.engine.prepare(lambda model: build_optimizer(model, self.training))
        self.scheduler = build_scheduler(self.optimizer, self.training.warmup_steps, self.total_steps)
        self.scaler = self.precision.grad_scaler()
        self.processes.check_accumulation(self.training.gradient_accumulation_steps)
        self.processes.seed_rank_streams(self.training.seed)
        if self.processes.is_main:
            create_folder(self.run_dir)
            write_text_atomic(self.run_dir / CONFIG_FILE, dump_yaml(self.config))
        self._log_start()

    def _log_start(self) -> None:
        params = self.params
        supervised = sum(example.supervised_tokens for example in self.train_examples)
        logger.info(
            "training %s: %s of %s parameters trainable (%.3f%%) in %d LoRA modules",
            self.config.model.name, f"{params['trainable']:,}", f"{params['total']:,}", params["trainable_pct"],
            len(params["lora_modules"]),
        )
        logger.info(
            "%d examples, %d micro-batches of %d per epoch; %d optimizer steps (%d per epoch, accumulation %d), "
            "about %s supervised tokens per step; precision %s on %s with %d threads",
            len(self.train_examples), self.micro_batches, self.training.batch_size, self.total_steps,
            self.steps_per_epoch, self.training.gradient_accumulation_steps,
            f"{supervised / self.steps_per_epoch:,.0f}", self.precision.name, self.device_type,
            torch.get_num_threads(),
        )

    def _restore_checkpoint(self) -> None:
        """Load the newest complete checkpoint. Without one, a resumed run starts again from step 0."""
        self.checkpoint = checkpoints.latest_checkpoint(self.run_dir)
        if self.checkpoint is None:
            logger.warning("%s has no complete checkpoint; training starts again from step 0", self.run_dir)
            return
        loaded = checkpoints.load_checkpoint(self.checkpoint, self.engine, self.scheduler, self.scaler, self.processes)
        self.state = TrainerState(**loaded)
        accumulation = self.training.gradient_accumulation_steps
        if self.state.micro_batch > self.micro_batches or (
            self.state.micro_batch % accumulation and self.state.micro_batch != self.micro_batches
        ):
            raise RunFolderError(
                f"{self.checkpoint} stopped at micro-batch {self.state.micro_batch}, which does not fit "
                f"{self.micro_batches} micro-batches per epoch with accumulation {accumulation}; resume with "
                "the training.batch_size and training.gradient_accumulation_steps the run started with"
            )
        logger.info("resuming %s from %s (epoch %d, micro-batch %d of %d)", self.run_dir, self.checkpoint.name,
                    self.state.epoch, self.state.micro_batch, self.micro_batches)

    def _open_metrics(self) -> None:
        """Open metrics.jsonl. A fresh run starts it with the epoch-0 validation loss; a resumed run first
        drops the records it will measure again, then records the resume."""
        path = self.run_dir / METRICS_FILE
        if self.resume and self.processes.is_main:
            kept = keep_until_checkpoint(path, self.state.step, self.state.epochs_done)
            self.epoch_records = [record for record in kept if record.get("type") == "epoch"]
            self.early_stopping = stopping.EarlyStopping.from_records(self.training, self.epoch_records)
        self.metrics = open_metrics_writer(path, self.config, resume=self.resume, is_main=self.processes.is_main)
        if self.resume:
            self._write_event("resume", checkpoint=self.checkpoint.name if self.checkpoint else None)
        # Only the first process has read the earlier records, and under FSDP or DeepSpeed the
        # validation pass needs every process, so the first one decides.
        if self.processes.any(self.processes.is_main and not any(record["epoch"] == 0 for record in self.epoch_records)):
            self._write_epoch_zero()

    # ----- loop -----

    def _train(self, stop_request: StopRequest) -> str:
        self.progress(ProgressEvent("start", self.state.step, self.total_steps, self.state.epoch))
        for epoch in range(self.state.epoch, self.epochs + 1):
            # Only the first process measures the validation loss, so its decision is shared with the others.
            if self.processes.any(self.processes.is_main and self.early_stopping.should_stop):
                return summaries.EARLY_STOPPED
            self.state.epoch = epoch
            order = epoch_batches(self.lengths, self.training.batch_size, self.training.seed, epoch,
                                  self.training.group_by_length)
            windows = accumulation_windows(len(order), self.training.gradient_accumulation_steps,
                                           start=self.state.micro_batch)
            for window in windows:
                if self.state.step >= self.total_steps:
                    break
                self._optimizer_step(pack_window([order[index] for index in window], self.lengths,
                                                 self.training.micro_batch_tokens))
                self.state.micro_batch = window.stop
                if self.processes.any(bool(stop_request)):
                    self._save_checkpoint()
                    return summaries.INTERRUPTED
                if self.state.step % self.training.checkpoint_every == 0 and window.stop < len(order):
                    self._save_checkpoint()

            self._finish_epoch(partial=self.state.micro_batch < len(order))
            if self.processes.any(bool(stop_request)):
                return summaries.INTERRUPTED
            if self.state.step >= self.total_steps:
                break
        return summaries.MAX_STEPS if self.training.max_steps is not None else summaries.FINISHED

    def _optimizer_step(self, window: list[list[int]]) -> None:
        started = time.perf_counter()
        step = self.state.step + 1
        # get_last_lr() returns the rate this step uses, and the scheduler advances after the update.
        lr = self.scheduler.get_last_lr()[0]

        # Forward and backward over this process's share of the accumulation window (all of it with one
        # process). Each micro-batch loss is divided by the supervised tokens of the whole window, so the
        # accumulated gradient, summed over processes, is that of the window's token-weighted mean loss,
        # whatever the lengths and padding of its micro-batches.
        micro_batches = [make_micro_batch(self.train_examples, indices, self.pad_token_id)
                         for indices in self.processes.share(window)]
        window_tokens = int(self.processes.sum(sum(micro_batch.supervised_tokens for micro_batch in micro_batches))[0])
        local_nll = sum(self._forward_backward(micro_batch, window_tokens, step) for micro_batch in micro_batches)
        if self.engine.lockstep:
            # FSDP and DeepSpeed need every process in every forward pass, so a process with fewer
            # micro-batches in this window runs extra passes whose loss counts zero times.
            for _ in range(-(-len(window) // self.processes.count) - len(micro_batches)):
                self._forward_backward(make_micro_batch(self.train_examples, window[0], self.pad_token_id),
                                       window_tokens, step, weight=0.0)
        local_input_tokens = sum(micro_batch.input_tokens for micro_batch in micro_batches)
        window_nll, input_tokens = self.processes.sum(local_nll, local_input_tokens)
        if not math.isfinite(window_nll):
            self._stop_on_nan("the loss", window_nll, step)

        # Reduce, clip, step, zero. The norm is measured before clipping; a non-finite one skips the update.
        grad_norm = self.engine.clip_and_step(self.training.max_grad_norm, self.scaler)
        if self.scaler is None and not math.isfinite(grad_norm):
            self._stop_on_nan("the gradient norm", grad_norm, step)
        self.scheduler.step()

        # Count and log.
        duration = time.perf_counter() - started
        self._count_step(window_nll, window_tokens, int(input_tokens), duration)
        loss = window_nll / window_tokens
        if step % self.training.log_every == 0:
            self.metrics.write({
                "type": "step", "epoch": self.state.epoch, "step": step, "loss": loss, "lr": lr,
                "grad_norm": finite_or_none(grad_norm), "clipped": grad_norm > self.training.max_grad_norm,
                "tokens": window_tokens, "elapsed_s": round(self._elapsed(), 3),
            })
        self.progress(ProgressEvent(
            "step", step, self.total_steps, self.state.epoch, loss,
            self.state.input_tokens / self.state.train_time_s, self.state.tokens / self.state.train_time_s,
        ))

    def _forward_backward(self, micro_batch: MicroBatch, window_tokens: int, step: int, weight: float = 1.0) -> float:
        """Run one micro-batch, accumulate `weight` times its gradient, and return its weighted summed
        negative log-likelihood."""
        batch = {key: value.to(self.device_type) for key, value in micro_batch.tensors.items()}
        with self.precision.autocast():
            sums, _ = self.engine.score(batch)
        nll = -sums.sum() * weight
        if step == self.nan_at_step:
            nll = nll * float("nan")
        value = nll.item()
        # A non-finite loss stops training in _optimizer_step, after all processes have summed their losses.
        loss = nll / window_tokens
        self.engine.backward(self.scaler.scale(loss) if self.scaler is not None else loss)
        return value

    def _count_step(self, nll: float, tokens: int, input_tokens: int, duration: float) -> None:
        state = self.state
        state.step += 1
        state.epoch_steps += 1
        state.epoch_nll += nll
        state.epoch_tokens += tokens
        state.epoch_input_tokens += input_tokens
        state.epoch_time_s += duration
        state.tokens += tokens
        state.input_tokens += input_tokens
        state.train_time_s += duration

    # ----- epochs, checkpoints, validation -----

    def _validation_loss(self) -> tuple[float | None, int, float]:
        # Only the first process records it. Under FSDP every process takes part in the forward passes.
        if not (self.processes.is_main or self.engine.lockstep):
            return None, 0, 0.0
        started = time.perf_counter()
        with self.precision.autocast():
            loss, tokens = mean_loss(self.model, self.family, self.validation_examples,
                                     self.training.eval_batch_size, self.pad_token_id, score=self.engine.score)
        if not self.processes.is_main:
            return None, 0, 0.0
        return finite_or_none(loss), tokens, time.perf_counter() - started

    def _write_epoch_zero(self) -> None:
        val_loss, val_tokens, duration = self._validation_loss()
        bytes_used, _ = peak_memory(self.device_type)
        self._write_epoch({"type": "epoch", "epoch": 0, "val_loss": val_loss, "val_tokens": val_tokens,
                           "time_s": round(duration, 3), "peak_memory_bytes": bytes_used})
        logger.info("epoch 0 (before training): validation loss %s over %d tokens", _format(val_loss), val_tokens)

    def _finish_epoch(self, partial: bool) -> None:
        state = self.state
        val_loss, val_tokens, duration = self._validation_loss()
        bytes_used, _ = peak_memory(self.device_type)
        record = {
            "type": "epoch", "epoch": state.epoch,
            "train_loss": state.epoch_nll / state.epoch_tokens if state.epoch_tokens else None,
            "val_loss": val_loss, "val_tokens": val_tokens, "time_s": round(state.epoch_time_s + duration, 3),
            "tokens": state.epoch_tokens, "input_tokens": state.epoch_input_tokens,
            "peak_memory_bytes": max(bytes_used, state.peak_memory_bytes), "steps": state.epoch_steps,
        }
        if partial:
            record["partial"] = True
        self._write_epoch(record)
        logger.info("epoch %d: train loss %s, validation loss %s, %d steps, %.0f s", state.epoch,
                    _format(record["train_loss"]), _format(val_loss), state.epoch_steps, record["time_s"])

        self.state = dataclasses.replace(
            state, epoch=state.epoch + 1, micro_batch=0, epochs_done=state.epoch, epoch_nll=0.0,
            epoch_tokens=0, epoch_input_tokens=0, epoch_steps=0, epoch_time_s=0.0,
        )
        if self.state.step > 0:
            self._save_checkpoint()

    def _write_epoch(self, record: dict) -> None:
        self.metrics.write(record)
        self.epoch_records.append(record)
        # Only the first process has the validation loss, and saving may need every process (FSDP).
        improved = self.processes.any(self.early_stopping.update(record) and self.processes.is_main)
        if improved and self.early_stopping.enabled:
            self.engine.save_model(self.run_dir / stopping.BEST_ADAPTER_DIR, functools.partial(
                stopping.save_best_adapter, record=record, step=self.state.step))

    def _write_event(self, event: str, **fields) -> None:
        self.metrics.write({"type": "event", "event": event, "step": self.state.step,
                            "elapsed_s": round(self._elapsed(), 3), **fields})

    def _save_checkpoint(self) -> Path:
        self.state.elapsed_s = self._elapsed()
        self.state.peak_memory_bytes = max(self.state.peak_memory_bytes, peak_memory(self.device_type)[0])
        rng_states = self.processes.gather_objects(checkpoints.capture_rng_states())
        return checkpoints.save_checkpoint(self.run_dir, self.engine, self.scheduler, self.scaler,
                                           dataclasses.asdict(self.state), self.processes, rng_states=rng_states)

    def _elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.session_start

    # ----- endings -----

    def _stop_on_nan(self, what: str, value: float, step: int) -> None:
        """Record a non-finite value and raise TrainingError. The last checkpoint stays as it is."""
        latest = checkpoints.latest_checkpoint(self.run_dir)
        self._write_event("nan", nan_step=step, value=str(value), quantity=what)
        self._write_summary(summaries.STOPPED_NAN)
        where = f"the last good checkpoint is {latest}" if latest else "no checkpoint was written yet"
        raise TrainingError(
            f"{what} is {value} at optimizer step {step} (epoch {self.state.epoch}), so training stopped; "
            f"{where}. Lower training.learning_rate or use training.precision=fp32, "
            f"then run `physlora train --resume {self.run_dir}`"
        )

    def _finish(self, status: str, stop_request: StopRequest) -> dict:
        if status == summaries.INTERRUPTED:
            self._write_event("interrupted", signal=stop_request.signal_name)
            logger.warning("stopped by %s after step %d; continue with `%s`", stop_request.signal_name,
                           self.state.step, resume_command(self.run_dir, self.processes.count, self.engine.name))
        else:
            self.engine.save_model(self.run_dir / ADAPTER_DIR, checkpoints.save_adapter)
        if status != summaries.INTERRUPTED and self.processes.is_main:
            if self.early_stopping.enabled:
                stopping.publish_best_adapter(self.run_dir / ADAPTER_DIR)
            self.metrics.log_adapter(self.run_dir / ADAPTER_DIR)
            self._write_event("end", status=status)
        summary = self._write_summary(status)
        throughput = summary["throughput"]
        logger.info("%s: %d steps in %.0f s (%s input tokens/s, %s supervised tokens/s); run folder %s",
                    status, self.state.step, summary["total_time_s"], _format(throughput["input_tokens_per_s"], 0),
                    _format(throughput["supervised_tokens_per_s"], 0), self.run_dir)
        self.progress(ProgressEvent("end", self.state.step, self.total_steps, self.state.epoch))
        return summary

    def _write_summary(self, status: str) -> dict:
        summary = summaries.build_summary(
            status=status, state=self.state, total_steps=self.total_steps, params=self.params,
            epochs=self.epoch_records, elapsed_s=self._elapsed(), precision=self.precision.name,
            config=self.config.model_dump(mode="json"), device_type=self.device_type,
        )
        summary.update(self.early_stopping.summary_fields(status, self.training.max_steps))
        summary["distributed"] = {"engine": self.engine.name, "processes": self.processes.count}
        if self.parent is not None:
            summary.update(self.parent.summary_fields())
        if self.processes.is_main:
            summaries.write_summary(self.run_dir, summary)
        return summary


def _format(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
