# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
# Both create/refresh .venv, install torch first (a bare `torch` requirement would pull a multi-GB CUDA build),
# then the package with its extras. Re-running is quick: the install step reruns only when setup.cfg changes.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-fast lint tts browser install

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev,bundled]"
	# bitsandbytes beside the venv, not in it: with it installed, every process that imports peft imports it too
	# (seconds each); the quantization tests put this folder on their path
	$(BIN)/python -m pip install -q --no-deps --upgrade --target $(VENV)/bitsandbytes "bitsandbytes>=0.48"
	touch $(STAMP)

# Offline speech synthesis (demo sample, corpus builder, tests) uses Debian's flite and espeak-ng.
tts:
	@command -v flite >/dev/null 2>&1 && command -v espeak-ng >/dev/null 2>&1 || { \
		echo "installing flite and espeak-ng (offline speech synthesis)"; $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq flite espeak-ng >/dev/null; }

# The demo page's browser test drives Debian's Chromium headless (nothing downloads a browser).
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
		echo "installing chromium and chromium-driver (the app's browser test)"; $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; }

demo: $(STAMP) tts
	$(BIN)/hf-whisper-context demo --output-dir outputs/demo --overwrite

test: $(STAMP) tts browser
	$(BIN)/python -m pytest -q

test-fast: $(STAMP) tts browser
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
