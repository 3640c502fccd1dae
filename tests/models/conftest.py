"""The `bundle` fixture: each tiny architecture, built once per test module."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import ARCHITECTURES, tiny_model

from physlora.models.loading import ModelBundle


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def bundle(request, t5_tokenizer_path: Path) -> ModelBundle:
    return tiny_model(t5_tokenizer_path, request.param)
