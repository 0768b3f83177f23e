"""examples/cnn_digits.py and examples/lstm_digits.py train on the digits data: a few steps
must already beat chance (10%) by far."""
import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, settings, floor", [
    ("cnn_digits", dict(steps=15, batch=16), 0.3),
    ("lstm_digits", dict(steps=25, batch=32, units=32), 0.3)])
def test_example_trains_above_chance(name, settings, floor, capsys):
    pytest.importorskip("sklearn")
    accuracy = load(name).main(**settings)
    assert f"test accuracy {accuracy:.4f}" in capsys.readouterr().out
    assert accuracy > floor
