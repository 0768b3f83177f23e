"""Differential fuzzing: every registered op, in random graphs, compiled by the LLVM backend
computes what the eager interpreter computes, forward and backward.

Graphs are chains of 1-4 ops (so elementwise chains, reductions and matmul epilogues fuse)
over every dtype an op takes, with dimensions across the vector and GEMM tile boundaries,
empty and size-1 dimensions, NaN and infinities (fuzz_program.py, fuzz_ops*.py,
fuzz_chains.py); fuzz_check.py says how results are compared. A known bug not fixed yet
would be kept out by a filter marked "Known bug", with a strict xfail test in
test_fuzz_regressions.py (none is, now).

`make test` runs a fixed, quick set of examples. A long search for new ones, which stops at
the first failure and shrinks it:
    make fuzz FUZZ_EXAMPLES=5000      (FLOWJIT_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_ops.py)
or one that reports every failure, unshrunk:
    PYTHONPATH=src python tests/fuzz_check.py --examples 5000 --report fuzz.txt
"""
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowjit.graph.registry import OP_DEFS

import fuzz_chains
from fuzz_check import check_program
from fuzz_ops import EXCLUDED, GENERATORS, IMPLICIT
from fuzz_program import Chooser

# The long run's size (a test setting, read only here): 0 means the quick default.
LONG_RUN = int(os.environ.get("FLOWJIT_FUZZ_EXAMPLES", "0") or 0)
SWEEPS = range(max(1, LONG_RUN // 200))  # every op, once per sweep
RANDOM_EXAMPLES = LONG_RUN or 30


def test_every_op_is_fuzzed():
    """A newly registered op needs a generator (fuzz_ops*.py), or an entry in IMPLICIT or
    EXCLUDED that says why not; elementwise ops get the generic generator."""
    missing = sorted(set(OP_DEFS) - set(GENERATORS) - set(IMPLICIT) - set(EXCLUDED))
    assert not missing, f"ops the fuzzer does not generate: {missing}"
    assert not set(GENERATORS) & (set(IMPLICIT) | set(EXCLUDED))
    assert not (set(IMPLICIT) | set(EXCLUDED)) - set(OP_DEFS), "stale entries"


@pytest.mark.parametrize("sweep", SWEEPS)
def test_every_op_compiled_matches_eager(sweep):
    """One chain starting with each op (then up to two random ops), twelve chains per
    compiled program; every op, and every op made implicitly, appears."""
    seen = set()
    for prog, _ in fuzz_chains.sweep_programs(sweep):
        seen.update(op.type for op in prog.graph.get_operations())
        check_program(prog)
    assert not (set(GENERATORS) | set(IMPLICIT)) - seen


@settings(max_examples=RANDOM_EXAMPLES, deadline=None, database=None,
          derandomize=not LONG_RUN, print_blob=bool(LONG_RUN),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(st.randoms(use_true_random=False))
def test_random_op_chains_compiled_match_eager(rng):
    """One to three random chains per program; a failure shrinks to a short one."""
    check_program(fuzz_chains.random_program(Chooser(rng)))
