"""Early stopping on the validation loss: the stopping rule, the best adapter it keeps, and resume."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
from peft import set_peft_model_state_dict
from safetensors.torch import load_file

from physlora.config.schema import TrainingConfig
from physlora.errors import ConfigError
from physlora.report.build import write_report
from physlora.train import train_run
from physlora.train.early_stopping import EarlyStopping
from physlora.train.trainer import Trainer

# A min_delta no epoch can reach: training never improves enough, so it stops after `patience` epochs.
NEVER_IMPROVES = ("training.epochs=4", "training.early_stopping_patience=2", "training.early_stopping_min_delta=100")


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "adapter_model.safetensors"))


def _assert_same_weights(first: Path, second: Path) -> None:
    one, two = _weights(first), _weights(second)
    assert one.keys() == two.keys()
    for name, tensor in one.items():
        torch.testing.assert_close(two[name], tensor, atol=0, rtol=0, msg=name)


def _tracker(patience: int | None, min_delta: float, losses: list[float | None]) -> EarlyStopping:
    training = TrainingConfig(early_stopping_patience=patience, early_stopping_min_delta=min_delta)
    records = [{"epoch": epoch, "val_loss": loss} for epoch, loss in enumerate(losses)]
    return EarlyStopping.from_records(training, records)


@pytest.mark.parametrize(
    ("losses", "best_epoch", "without_improvement", "stops"),
    [
        ([5.0, 4.0, 3.95, 3.99], 1, 2, True),  # 3.95 is lower than 4.0 but not by more than min_delta 0.1
        ([5.0, 4.0, 3.85], 2, 0, False),
        ([5.0, 5.2, 4.95], 0, 2, True),
        ([5.0, None, 4.0], 2, 0, False),  # a null loss counts as no improvement
        ([5.0, None, None], 0, 2, True),
    ],
)
def test_tracker_applies_patience_and_min_delta(losses, best_epoch, without_improvement, stops):
    tracker = _tracker(2, 0.1, losses)
    assert tracker.best_epoch == best_epoch
    assert tracker.best_val_loss == losses[best_epoch]
    assert tracker.epochs_without_improvement == without_improvement
    assert tracker.should_stop is stops


def test_tracker_without_patience_never_stops():
    tracker = _tracker(None, 0.0, [1.0, 2.0, 3.0, 4.0])
    assert tracker.best_epoch == 0
    assert tracker.should_stop is False


def test_stops_after_patience_epochs(make_config):
    config = make_config(*NEVER_IMPROVES)
    summary = train_run(config)
    run_dir = Path(config.output.dir)

    assert summary["status"] == "early_stopped"
    assert [record["epoch"] for record in summary["epochs"]] == [0, 1, 2]
    assert summary["steps"] == 10
    assert summary["best_epoch"] == 0
    assert summary["best_val_loss"] == summary["epochs"][0]["val_loss"]
    assert summary["adapter_epoch"] == 0
    assert summary["stop_reason"] == (
        "early stopping: the validation loss did not improve by more than 100 for 2 epochs after the best epoch 0"
    )
    # Epoch 0 is the fresh adapter, whose LoRA B matrices are zero; RUN/adapter is that adapter again.
    _assert_same_weights(run_dir / "adapter", run_dir / "adapter-best")
    best = _weights(run_dir / "adapter")
    assert all(not tensor.any() for name, tensor in best.items() if "lora_B" in name)
    last = _weights(run_dir / "adapter-last")
    assert any(tensor.any() for name, tensor in last.items() if "lora_B" in name)
    assert json.loads((run_dir / "adapter" / "best_epoch.json").read_text(encoding="utf-8"))["epoch"] == 0

    report = write_report(run_dir).read_text(encoding="utf-8")
    assert f"Training ended ({summary['stop_reason']})." in report
    assert f"Best epoch by validation loss: 0 (validation loss {summary['best_val_loss']:.4f})." in report
    assert "RUN/adapter contains the best adapter, from epoch 0" in report


def test_best_adapter_has_best_val_loss(make_config, tmp_path):
    config = make_config("training.epochs=3", "training.early_stopping_patience=1", "training.learning_rate=2e-2",
                         "training.warmup_steps=0")
    summary = train_run(config)
    run_dir = Path(config.output.dir)

    losses = [record["val_loss"] for record in summary["epochs"]]
    expected = _tracker(1, 0.0, losses)
    assert summary["best_epoch"] == expected.best_epoch
    assert summary["best_val_loss"] == min(losses)
    stopped_early = summary["status"] == "early_stopped"
    assert stopped_early is (len(losses) < 4)

    # Rebuild the model, load RUN/adapter and measure the validation loss again: it is the best epoch's.
    check = make_config("training.epochs=3", run="check")
    trainer = Trainer(check)
    trainer._setup()
    set_peft_model_state_dict(trainer.model, _weights(run_dir / "adapter"))
    val_loss, _, _ = trainer._validation_loss()
    assert val_loss == pytest.approx(summary["best_val_loss"], abs=1e-5)


def test_resume_continues_patience_count(make_config):
    reference = make_config(*NEVER_IMPROVES, run="reference")
    reference_summary = train_run(reference)
    config = make_config(*NEVER_IMPROVES, run="interrupted")
    run_dir = Path(config.output.dir)

    # Step 7 is inside epoch 2, after epoch 1 counted one epoch without improvement.
    def send_sigint_at_step_7(event):
        if event.kind == "step" and event.step == 7:
            signal.raise_signal(signal.SIGINT)

    assert train_run(config, progress=send_sigint_at_step_7)["status"] == "interrupted"
    summary = train_run(config, resume=True)

    assert summary["status"] == "early_stopped"
    assert summary["steps"] == reference_summary["steps"] == 10
    assert summary["best_epoch"] == 0
    assert [record["epoch"] for record in summary["epochs"]] == [0, 1, 2]
    _assert_same_weights(run_dir / "adapter", Path(reference.output.dir) / "adapter")
    _assert_same_weights(run_dir / "adapter-last", Path(reference.output.dir) / "adapter-last")
    again = train_run(config, resume=True)
    assert again["status"] == "early_stopped"


def test_min_delta_without_patience_rejected(make_config):
    with pytest.raises(ConfigError, match="early_stopping_min_delta has no effect"):
        make_config("training.early_stopping_min_delta=0.1")


def test_empty_validation_rejected(make_config, data_dir):
    (data_dir / "validation.jsonl").write_text("", encoding="utf-8")
    config = make_config("training.early_stopping_patience=2")
    with pytest.raises(ConfigError, match="validation.jsonl contains no records"):
        train_run(config)
    assert not (Path(config.output.dir) / "metrics.jsonl").exists()

