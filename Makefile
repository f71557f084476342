# The two commands: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo sample test lint typecheck install bench bench-gpu eval paper train clean fuzz soak

install: $(STAMP)

# torch is installed first and pinned (2.13.0): a range would pull a CUDA build (DEVELOPERS.md).
$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	@command -v redis-server >/dev/null || { echo "make demo needs redis-server (apt-get install redis-server)"; exit 1; }
	$(BIN)/emostream demo

sample: $(STAMP)
	$(BIN)/emostream sample

lint: $(STAMP)
	$(BIN)/ruff check .

# mypy over the installed layout: build/typecheck/emostream/{model,ingest,worker} are links
typecheck: $(STAMP)
	rm -rf build/typecheck && mkdir -p build/typecheck/emostream
	cp emostream/*.py emostream/py.typed build/typecheck/emostream/
	for d in model ingest worker; do ln -s ../../../$$d build/typecheck/emostream/$$d; done
	cd build/typecheck && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p emostream

test: $(STAMP) lint typecheck
	$(BIN)/pytest -q -ra

# The fuzz tests (decoder, image headers, batches) at 100x their make-test examples, with
# fresh random inputs each run; about 20 minutes on 2 cores.
fuzz: $(STAMP)
	EMOSTREAM_FUZZ_EXAMPLES=30000 HYPOTHESIS_PROFILE=explore $(BIN)/pytest -q -m fuzz

# 30 minutes of mixed traffic with kill -9, Redis restarts and hostile bursts (not in test).
soak: $(STAMP)
	$(BIN)/python -m bench.soak --minutes 30

# On a CUDA machine: model-only fp16/bf16 at batches 64-1024, nvJPEG vs Pillow, the pipeline;
# one JSON (bench/results/gpu.json). Exits 2 with a message where there is no CUDA.
bench-gpu: $(STAMP)
	$(BIN)/python -m bench.gpu

# Every benchmark in turn (about 45 minutes on 2 cores); each prints a table and writes JSON.
bench: $(STAMP)
	$(BIN)/python -m bench.encoders
	$(BIN)/python -m bench.model_limit
	$(BIN)/python -m bench.model_versions
	$(BIN)/python -m bench.image_path
	$(BIN)/python -m bench.cpu_contention
	$(BIN)/python -m bench.broker_delivery
	$(BIN)/python -m bench.io_limits
	$(BIN)/python -m bench.pipeline

eval: $(STAMP)
	$(BIN)/emostream eval

paper: $(STAMP)
	$(BIN)/emostream eval --paper

# Retrains the shipped model from ../shared/data on CPU (about 1.5 hours on 2 cores): the
# text and image encoders' fine-tuned layers (deltas), then the served heads on top.
train: $(STAMP)
	$(BIN)/python -m emostream.model.training.text_finetune --out .cache/text-ft --ship emostream-v2-minilm
	$(BIN)/python -m emostream.model.training.image_finetune --out .cache/image-ft \
		--ship emostream-v2-effnet-lite0
	$(BIN)/emostream train

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache
