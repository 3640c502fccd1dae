"""Command-line interface: thin subcommands that parse options and call one entry function per stage.

Stage modules are imported inside each command so that `physlora --help` starts without torch.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

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
