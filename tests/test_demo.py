"""`make demo`'s program, short: it trains, matches the eager interpreter, restores its
checkpoint with the same accuracy, and leaves every promised file, readable."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import flowjit

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


def test_demo_leaves_everything_it_promises(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("tqdm")
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    out = tmp_path / "demo"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(Path(flowjit.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(DEMO), "--steps", "60", "--log_every", "20",
                           "--outdir", str(out)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.8
    assert metrics["restored_accuracy"] == metrics["test_accuracy"]
    assert metrics["eager_max_abs_difference"] < 1e-3
    assert f"test accuracy: {metrics['test_accuracy']:.4f}" in done.stdout
    assert "max |difference| =" in done.stdout and "(the same)" in done.stdout
    assert "tensorboard --logdir" in done.stdout and "flowjit-dump" in done.stdout
    for name in ("curves.png", "train_step.ir", "train_step.dot", "timeline.json",
                 "checkpoints/checkpoint", "checkpoints/model-60.index"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "train_step.png").exists() or (out / "train_step.svg").exists()
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    trace = json.loads((out / "timeline.json").read_text())["traceEvents"]
    assert any(e.get("name") == "execute" for e in trace)
    logs = event_accumulator.EventAccumulator(str(out / "logs"), size_guidance={
        event_accumulator.SCALARS: 0})
    logs.Reload()
    assert [e.step for e in logs.Scalars("train/loss")] == [0, 20, 40]
    assert logs.Tags()["run_metadata"] == ["loss"] and logs.Tags()["graph"]
