"""End-to-end training runs of tiny random models: run-folder files, metrics, stops and precision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file

from physlora.errors import ConfigError, RunFolderError, TrainingError
from physlora.models.loading import load_model
from physlora.models.scoring import unwrap
from physlora.train import train_run
from physlora.train.trainer import NAN_HOOK_ENV, Trainer

STEP_FIELDS = {"type", "epoch", "step", "loss", "lr", "grad_norm", "clipped", "tokens", "elapsed_s"}
EPOCH_FIELDS = {"type", "epoch", "train_loss", "val_loss", "time_s", "tokens", "input_tokens", "peak_memory_bytes", "steps"}
SUMMARY_FIELDS = {"params", "epochs", "total_time_s", "peak_memory_bytes", "peak_memory_kind", "tokens", "steps",
                  "status", "config", "versions", "hardware"}


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("causal", [False, True], ids=["t5", "gemma3"])
def test_loss_falls(make_config, causal):
    config = make_config("training.learning_rate=1e-2", "training.warmup_steps=0", "training.epochs=3", causal=causal)
    summary = train_run(config)
    epochs = summary["epochs"]
    assert [record["epoch"] for record in epochs] == [0, 1, 2, 3]
    assert epochs[3]["train_loss"] < epochs[1]["train_loss"] - 0.1
    assert epochs[3]["val_loss"] < epochs[0]["val_loss"] - 0.1


def test_run_folder_files_and_metrics_fields(make_config):
    config = make_config("training.epochs=2", "training.checkpoint_every=3")
    summary = train_run(config)
    run_dir = Path(config.output.dir)

    records = _metrics(run_dir)
    assert records[0]["type"] == "epoch"
    assert records[0]["epoch"] == 0
    assert records[0]["val_loss"] > 0
    steps = [record for record in records if record["type"] == "step"]
    assert [record["step"] for record in steps] == list(range(1, 11))
    for record in steps:
        assert STEP_FIELDS <= record.keys()
    epochs = [record for record in records if record["type"] == "epoch" and record["epoch"] > 0]
    assert [record["epoch"] for record in epochs] == [1, 2]
    for record in epochs:
        assert EPOCH_FIELDS <= record.keys()
        assert record["steps"] == 5

    assert SUMMARY_FIELDS <= summary.keys()
    assert json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))["status"] == "finished"
    assert summary["tokens"]["supervised"] == sum(record["tokens"] for record in steps)
    assert summary["peak_memory_kind"] == "rss"
    assert (run_dir / "config.yaml").is_file()
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    # Checkpoints are written at steps 3, 5 (epoch end), 6, 9 and 10 (epoch end), and the last two are kept.
    assert sorted(path.name for path in (run_dir / "checkpoints").iterdir()) == ["step-000009", "step-000010"]
    # Folders renamed into place keep the mode a plain mkdir gives, not mkdtemp's 0700.
    plain_mode = (run_dir / "plain").mkdir() or (run_dir / "plain").stat().st_mode & 0o777
    for folder in (run_dir / "adapter", run_dir / "checkpoints" / "step-000010"):
        assert folder.stat().st_mode & 0o777 == plain_mode, folder


def test_scheduler_steps_once_per_optimizer_step(make_config, tmp_path):
    from physics_records import write_data

    data = write_data(tmp_path / "data160", train_count=160, validation_count=4)
    config = make_config(f"output.data_dir={data}", "training.batch_size=1", "training.gradient_accumulation_steps=10",
                         "training.epochs=2", "training.warmup_steps=4", "training.checkpoint_every=100")
    summary = train_run(config)
    run_dir = Path(config.output.dir)

    assert summary["steps"] == 32
    assert [record["steps"] for record in summary["epochs"][1:]] == [16, 16]
    scheduler_state = torch.load(run_dir / "checkpoints" / "step-000032" / "scheduler.pt", weights_only=True)
    optimizer_state = torch.load(run_dir / "checkpoints" / "step-000032" / "optimizer.pt", weights_only=True)
    assert scheduler_state["last_epoch"] == 32
    assert all(int(state["step"]) == 32 for state in optimizer_state["state"].values())
    lrs = [record["lr"] for record in _metrics(run_dir) if record["type"] == "step"]
    peak = config.training.learning_rate
    assert lrs[:5] == pytest.approx([0.0, peak / 4, peak / 2, 3 * peak / 4, peak])
    assert lrs[-1] == pytest.approx(peak / 28)


def test_warmup_longer_than_run_warns(make_config, caplog):
    config = make_config("training.epochs=1", "training.warmup_steps=50")
    train_run(config)
    assert "warmup_steps=50" in caplog.text
    assert "5 optimizer steps" in caplog.text


def test_max_steps_zero_writes_summary(make_config):
    config = make_config()
    summary = train_run(config, max_steps=0)
    run_dir = Path(config.output.dir)

    assert summary["status"] == "max_steps"
    assert summary["steps"] == 0
    assert summary["params"]["trainable"] > 0
    assert summary["epochs"][0]["epoch"] == 0
    assert summary["epochs"][0]["val_loss"] > 0
    assert (run_dir / "summary.json").is_file()
    assert (run_dir / "adapter" / "adapter_config.json").is_file()
    assert not any(record["type"] == "step" for record in _metrics(run_dir))


def test_max_steps_stops_mid_epoch(make_config):
    summary = train_run(make_config("training.epochs=2"), max_steps=3)
    assert summary["status"] == "max_steps"
    assert summary["steps"] == 3
    assert summary["epochs"][-1]["partial"] is True


def test_nan_loss_stops_and_keeps_checkpoint(make_config, monkeypatch):
    monkeypatch.setenv(NAN_HOOK_ENV, "4")
    config = make_config("training.checkpoint_every=2")
    run_dir = Path(config.output.dir)
    with pytest.raises(TrainingError, match="at optimizer step 4") as error:
        train_run(config)

    assert "step-000002" in str(error.value)
    assert [path.name for path in (run_dir / "checkpoints").glob("step-*")] == ["step-000002"]
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "stopped_nan"
    assert summary["steps"] == 3
    events = [record for record in _metrics(run_dir) if record["type"] == "event"]
    assert events[-1]["event"] == "nan"
    assert events[-1]["nan_step"] == 4
    assert not (run_dir / "adapter").exists()


def test_fp16_with_t5_rejected(make_config):
    with pytest.raises(ConfigError, match="T5 overflows in fp16; use bf16 or fp32"):
        train_run(make_config("training.precision=fp16"))


def test_missing_data_names_build_command(make_config, tmp_path):
    with pytest.raises(RunFolderError, match="physlora data build --config <your config> --out"):
        train_run(make_config(f"output.data_dir={tmp_path / 'nowhere'}"))


def test_existing_run_folder_needs_overwrite(make_config):
    config = make_config("training.checkpoint_every=1")
    train_run(config, max_steps=3)
    with pytest.raises(RunFolderError, match="--resume"):
        train_run(config)

    summary = train_run(config, max_steps=1, overwrite=True)
    run_dir = Path(config.output.dir)
    assert summary["steps"] == 1
    assert [path.name for path in (run_dir / "checkpoints").iterdir()] == ["step-000001"]
    assert [record["step"] for record in _metrics(run_dir) if record["type"] == "step"] == [1]


@pytest.mark.parametrize("causal", [False, True], ids=["t5", "gemma3"])
def test_gradient_checkpointing_trains_every_lora_b(make_config, causal):
    config = make_config("training.gradient_checkpointing=true", "training.learning_rate=1e-2", causal=causal)
    trainer = Trainer(config, max_steps=3)
    trainer.run()

    assert unwrap(trainer.model).is_activation_checkpointing
    weights = load_file(str(Path(config.output.dir) / "adapter" / "adapter_model.safetensors"))
    lora_b = {name: tensor for name, tensor in weights.items() if "lora_B" in name}
    assert len(lora_b) == len(trainer.params["lora_modules"])
    for name, tensor in lora_b.items():
        assert tensor.abs().max() > 0, name


@pytest.mark.parametrize("causal", [False, True], ids=["t5", "gemma3"])
def test_reloaded_adapter_gives_identical_logits(make_config, causal):
    config = make_config("training.learning_rate=1e-2", causal=causal)
    trainer = Trainer(config, max_steps=4)
    trainer.run()
    base = load_model(config.model, seed=config.training.seed)
    reloaded = PeftModel.from_pretrained(base.model, str(Path(config.output.dir) / "adapter"))

    batch = {"input_ids": torch.tensor([[37, 1057, 13, 2054, 1]]), "attention_mask": torch.ones(1, 5, dtype=torch.long)}
    if not causal:
        batch["decoder_input_ids"] = torch.tensor([[0, 1745, 13]])
    trainer.model.eval()
    reloaded.eval()
    with torch.no_grad():
        trained_logits = trainer.model(**batch).logits
        reloaded_logits = reloaded(**batch).logits
    assert torch.equal(trained_logits, reloaded_logits)
    assert not torch.equal(trained_logits, _base_logits(config, batch))


def _base_logits(config, batch) -> torch.Tensor:
    """Return the logits of a fresh base model without adapter, to show that the adapter changes the output."""
    with torch.no_grad():
        return load_model(config.model, seed=config.training.seed).model(**batch).logits
