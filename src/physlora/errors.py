"""Errors that a user can fix. The CLI prints their message without a traceback (unless --debug)."""


class PhysloraError(Exception):
    """A failure caused by input the user controls: a file, a config value or a command-line option."""

    exit_code = 2


class ConfigError(PhysloraError):
    """An invalid configuration value, key or file."""


class DataError(PhysloraError):
    """A data source that cannot be read or yields nothing usable."""


class ModelError(PhysloraError):
    """A model, tokenizer or adapter that cannot be loaded or does not fit the config."""


class MethodUnavailableError(ModelError):
    """An adaptation method that cannot run in this environment (a package or backend is missing)."""


class RunFolderError(PhysloraError):
    """A run folder that is missing files another stage needs."""


class TrainingError(PhysloraError):
    """Training stopped because of a numerical problem (for example a NaN loss)."""

    exit_code = 3
