# Every target sets itself up: a fresh clone needs nothing but python3 (>= 3.10). The install
# skips compiling every dependency's bytecode (half its time); Python compiles what it imports.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo demo-distributed test fuzz venv clean ir-dumps

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-compile -e '.[dev,examples]'  # (bytecode: on first import)
	touch $(STAMP)

## make demo: run the seed programs (the talks' TF1 code, import line changed), then train an
## MLP on the digits with everything around it (examples/demo.py: results under runs/demo)
demo: $(STAMP)
	$(PY) examples/run_seeds.py
	$(PY) examples/demo.py

## make demo-distributed: data-parallel training on the digits as 2 MPI processes
## (flowjit.distribute; MPICH and mpi4py come with the venv's distributed extra)
demo-distributed: $(STAMP)
	$(VENV)/bin/flowjitrun -np 2 $(PY) examples/distributed_mnist.py

## make test: the whole test suite, on the default (LLVM) backend and on the eager interpreter
test: $(STAMP)
	$(PY) -m pytest -n 2 tests
	FLOWJIT_BACKEND=eager $(PY) -m pytest -n 2 tests

## make fuzz: a long differential fuzz of every op, LLVM backend against the eager one
## (FUZZ_EXAMPLES random programs, and a sweep of every op per 200; no disk cache)
FUZZ_EXAMPLES ?= 5000
fuzz: $(STAMP)
	FLOWJIT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FLOWJIT_CACHE_DIR=off \
	    $(PY) -m pytest -p no:xdist tests/test_fuzz_ops.py

## make ir-dumps: regenerate ir_dumps/ (the example MLP's IR at every compile stage, its PTX)
ir-dumps: $(STAMP)
	rm -rf ir_dumps/mlp
	$(VENV)/bin/flowjit-dump examples/mlp.py --out ir_dumps/mlp --dot \
	    --stages ir,autodiff,decompose,canonicalize,const-fold,cse,dce,fusion,opt
	rm -rf ir_dumps/mlp-ptx  # the CUDA backend's PTX module of each executable (sm_90)
	$(VENV)/bin/flowjit-dump examples/mlp.py --out ir_dumps/mlp-ptx --stages ptx

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .hypothesis
