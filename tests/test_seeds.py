"""The talks' programs run unchanged but for the import, and print what the slides print."""
import importlib.util
import sys
from pathlib import Path

import pytest

import flowjit

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))
run_seeds = importlib.import_module("run_seeds")


@pytest.mark.parametrize("program,needs", run_seeds.PROGRAMS)
def test_seed_prints_what_the_slide_prints(program, needs):
    if needs is not None and not hasattr(flowjit, needs):
        pytest.skip(f"needs tf.{needs} (a later issue)")
    expected = (run_seeds.SEEDS / program.replace(".py", ".expected")).read_text()
    assert run_seeds.run_program(program) == expected
