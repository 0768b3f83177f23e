"""Every example in examples/ runs, with short settings (a few seconds each, on whichever
backend the suite runs: FLOWJIT_BACKEND passes to the child), and the figures it prints
show it learned: losses fall, accuracies are far above chance (10 digits: 0.1)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import flowjit

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SOURCE = Path(flowjit.__file__).resolve().parents[1]


def run_example(name, *args, cwd):
    # One BLAS thread per child: the suite runs two workers on two cores, and OpenBLAS's
    # spinning threads, oversubscribed, made the eager backend's matmuls 100x slower.
    env = dict(os.environ, PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(SOURCE)] + [p for p in [
                   os.environ.get("PYTHONPATH")] if p]))
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


def figures(pattern, text):
    """Every number the pattern's one group captures, in order."""
    return [float(x) for x in re.findall(pattern, text, re.M)]


def final(what, text):
    (value,) = figures(rf"^final {what}: ([0-9.]+)", text) or [None]
    assert value is not None, f"no 'final {what}' line in:\n{text}"
    return value


def test_every_example_is_tested():
    tested = {"linear_regression.py", "logistic_regression.py", "mlp_digits.py",
              "tensorboard_logging.py", "autoencoder.py", "save_restore.py", "mlp.py",
              "demo.py", "run_seeds.py", "cnn_digits.py", "lstm_digits.py",
              "distributed_mnist.py"}
    # (demo.py: test_demo.py; run_seeds.py: test_seeds.py; the CNN and LSTM:
    # test_examples_nn.py; distributed_mnist.py: test_distributed.py)
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_linear_regression(tmp_path):
    out = run_example("linear_regression.py", "--epochs", "3", cwd=tmp_path)
    mse = figures(r"train MSE ([0-9.]+)", out)
    assert len(mse) == 4 and mse[-1] < mse[0] / 10
    baseline = figures(r"baseline test RMSE \(predict the mean\): ([0-9.]+)", out)[0]
    assert final("test RMSE", re.sub(r" \(noise.*", "", out, flags=re.M)) < baseline / 2


def test_logistic_regression_on_digits(tmp_path):
    out = run_example("logistic_regression.py", "--epochs", "3", "--learning_rate", "0.5",
                      cwd=tmp_path)
    costs = figures(r"train cost ([0-9.]+)", out)
    assert len(costs) == 3 and costs[-1] < costs[0]
    assert final("test accuracy", re.sub(r" \(\d+ test digits\)", "", out)) > 0.7


def test_mlp_digits_prints_the_talks_table(tmp_path):
    out = run_example("mlp_digits.py", "--epochs", "4", "--hidden_nodes", "32",
                      "--learning_rate", "0.2", cwd=tmp_path)
    rows = re.findall(r"^(.+?)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)$", out, re.M)
    assert [r[0] for r in rows] == ["softmax regression", "1 hidden layer, linear",
                                    "1 hidden layer, ReLU", "2 hidden layers, ReLU"]
    for _, first, last, train, test in rows:
        assert float(last) < float(first) and float(train) > 60 and float(test) > 60


def test_tensorboard_logging_writes_what_tensorboard_reads(tmp_path):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    out = run_example("tensorboard_logging.py", "--model", "mlp", "--max_iterations", "40",
                      "--logdir", "logs", cwd=tmp_path)
    losses = figures(r"step \d+ loss ([0-9.]+)", out)
    assert losses[-1] < losses[0]
    accuracy = final("test accuracy", out)
    assert accuracy > 0.6
    logs = event_accumulator.EventAccumulator(str(tmp_path / "logs"), size_guidance={
        event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0})
    logs.Reload()
    assert [e.step for e in logs.Scalars("loss")] == [0, 10, 20, 30]
    assert len(logs.Scalars("accuracy")) == 4
    assert set(logs.Tags()["histograms"]) == {"weights_w1", "weights_w2", "weights_w3"}
    assert set(logs.Tags()["images"]) == {"input/image/0", "input/image/1", "input/image/2"}
    assert logs.Images("input/image/0")[0].width == 28
    assert any(node.name == "x_in" for node in logs.Graph().node)


def test_autoencoder_reconstruction_improves(tmp_path):
    out = run_example("autoencoder.py", "--max_iterations", "150", "--batch_size", "20",
                      cwd=tmp_path)
    test_losses = figures(r"test loss ([0-9.]+)", out)
    assert test_losses[-1] < test_losses[0] / 2
    assert final("test loss", out) == test_losses[-1]


def test_save_restore_gets_the_same_accuracy(tmp_path):
    out = run_example("save_restore.py", "--epochs", "2", "--checkpoint_dir", "ckpt",
                      cwd=tmp_path)
    trained = figures(r"test accuracy after training: ([0-9.]+)", out)[0]
    restored = figures(r"test accuracy after restoring: ([0-9.]+) \(the same\)", out)[0]
    assert trained == restored > 0.6
    kept = sorted(p.name for p in (tmp_path / "ckpt").glob("model-*.index"))
    assert kept == ["model-1.index", "model-2.index"]


def test_synthetic_mlp(tmp_path):
    out = run_example("mlp.py", cwd=tmp_path)
    losses = figures(r"loss ([0-9.]+)", out)
    assert losses[-1] < losses[0] / 10
    assert figures(r"accuracy on the training data: ([0-9.]+)", out)[0] > 0.9
