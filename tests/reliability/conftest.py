"""Fixtures of the reliability tests: a small built data set for training commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from physics_records import write_data


@pytest.fixture(scope="session")
def train_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built data set of 16 training and 4 validation records."""
    return write_data(tmp_path_factory.mktemp("train-data"), 16, 4)
