# Everything bootstraps its own virtual environment in .venv from nothing but python3.
PYTHON ?= python3
VENV   ?= .venv
EXTRAS ?= test
comma  := ,
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

# Where the real datasets are, if you have them (one sub-directory per dataset: mnist/, fashion-mnist/).
# Unset, steepest looks in its cache and system locations, then downloads.
export STEEPEST_DATA

.PHONY: install run test bench accuracy clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

install: $(STAMP)

## The main job: train the 784-128-64-10 network on MNIST (or the bundled 8×8 digits) and print test accuracy.
run: $(STAMP)
	$(BIN)/steepest train --dataset mnist --fallback digits --hidden 128 64 --activation relu --init he \
	    --optimizer momentum --lr 0.05 --momentum 0.9 --batch-size 128 --epochs 5 --seed 0
	@echo "the steepest command is $(BIN)/steepest; '. $(BIN)/activate' puts it on your PATH"

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, where a machine sets them, pin NumPy's BLAS to an older
# kernel; the benchmark runs without them (the report records the kernel used).
BENCH_ARGS ?= --unset-openblas-env --wait-quiet 300

bench:
	$(MAKE) install EXTRAS=bench
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

## The recipes' test accuracy for SEEDS seeds (hours on 2 cores): writes benchmarks/ACCURACY.md.
SEEDS ?= 3
accuracy: $(STAMP)
	$(BIN)/python benchmarks/accuracy.py --seeds $(SEEDS) $(ACCURACY_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
