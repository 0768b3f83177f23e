"""The talks' programs run unchanged but for the import, and print what the slides print."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import flowjit

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))
run_seeds = importlib.import_module("run_seeds")


@pytest.mark.parametrize("program,needs", run_seeds.PROGRAMS)
def test_seed_prints_what_the_slide_prints(program, needs):
    if needs is not None and not hasattr(flowjit, needs):
        pytest.skip(f"needs tf.{needs} (a later issue)")
    expected_file = run_seeds.SEEDS / program.replace(".py", ".expected")
    output = run_seeds.run_program(program)  # raises if the program exits non-zero
    if expected_file.exists():
        assert output == expected_file.read_text()


def test_three_backprop_styles_give_the_same_weights():
    sys.path.insert(0, str(run_seeds.SEEDS))
    mlp_backprop = importlib.import_module("mlp_backprop")
    images, labels = mlp_backprop.synthetic_mnist(n=96)
    results = {v: mlp_backprop.train_version(v, images, labels)
               for v in ("very-low-level", "low-level", "convenient")}
    for version in ("low-level", "convenient"):
        for manual, other in zip(results["very-low-level"], results[version]):
            np.testing.assert_allclose(other, manual, rtol=0, atol=1e-6)
    assert not np.allclose(results["convenient"][0], results["convenient"][0] * 0)
