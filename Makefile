# The two commands: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo sample test lint install bench eval paper train clean

install: $(STAMP)

# torch is installed first and pinned (2.13.0): a range would pull a CUDA build (DEVELOPERS.md).
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	@command -v redis-server >/dev/null || { echo "make demo needs redis-server (apt-get install redis-server)"; exit 1; }
	$(BIN)/emostream demo

sample: $(STAMP)
	$(BIN)/emostream sample

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) lint
	$(BIN)/pytest -q -ra

# Every benchmark in turn (about 45 minutes on 2 cores); each prints a table and writes JSON.
bench: $(STAMP)
	$(BIN)/python bench/encoders.py
	$(BIN)/python bench/model_limit.py
	$(BIN)/python bench/image_path.py
	$(BIN)/python bench/cpu_contention.py
	$(BIN)/python bench/broker_delivery.py
	$(BIN)/python bench/io_limits.py
	$(BIN)/python bench/pipeline.py

eval: $(STAMP)
	$(BIN)/emostream eval

paper: $(STAMP)
	$(BIN)/emostream eval --paper

train: $(STAMP)
	$(BIN)/emostream train

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache
