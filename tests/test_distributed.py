"""flowjit.distribute: 2 MPI processes on this machine against one (the same training on
batches of B per rank equals one process on batches of 2B), identical variables on every
rank, a failing rank failing the job instead of hanging it; the bucketing pass on the IR;
the API in a single process (size 1, no launcher). Skipped without mpi4py and an MPI."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import flowjit as tf
from flowjit import errors
from flowjit.ir.parser import parse_func as parse
from flowjit.ir.printer import print_func
from flowjit.interp.evaluate import evaluate
from flowjit.passes import bucket_allreduce, cse, dce
from flowjit.distribute import run as flowjitrun

pytest.importorskip("mpi4py", reason="flowjit.distribute needs mpi4py (the distributed extra)")
if flowjitrun.find_launcher() is None:
    pytest.skip("no MPI launcher (mpiexec): install the distributed extra",
                allow_module_level=True)

import flowjit.distribute as hvd  # noqa: E402

PROGRAM = Path(__file__).with_name("distributed_program.py")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "distributed_mnist.py"
SOURCE = Path(tf.__file__).resolve().parents[1]


def launch(processes, *args, timeout=120, program=PROGRAM, **env):
    """`program` as `processes` ranks (flowjitrun), or as a plain process (None)."""
    environment = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(SOURCE)] + [p for p in [os.environ.get("PYTHONPATH")] if p]), **env)
    command = [sys.executable, str(program), *args]
    if processes is not None:
        command = [sys.executable, "-m", "flowjit.distribute.run", "-np", str(processes),
                   *command]
    return subprocess.run(command, capture_output=True, text=True, env=environment,
                          timeout=timeout)


# -- 2 processes -----------------------------------------------------------------------------
def test_two_ranks_on_batches_of_b_equal_one_process_on_2b(tmp_path):
    steps, global_batch = 6, 16
    two = launch(2, "train", str(tmp_path / "two"), str(steps), str(global_batch))
    assert two.returncode == 0, two.stdout + two.stderr
    one = launch(None, "train", str(tmp_path / "one"), str(steps), str(global_batch))
    assert one.returncode == 0, one.stdout + one.stderr
    single = np.load(tmp_path / "one-rank0.npz")
    ranks = [np.load(tmp_path / f"two-rank{r}.npz") for r in range(2)]
    assert single["losses"][-1] < single["losses"][0]  # (it learns)
    for run in ranks:
        np.testing.assert_allclose(run["losses"], single["losses"], rtol=1e-5, atol=1e-6)
        assert sorted(run.files) == sorted(single.files)
        for name in single.files:
            np.testing.assert_allclose(run[name], single[name], rtol=1e-4, atol=1e-6,
                                       err_msg=name)
    for name in ranks[0].files:  # every rank ends with the same variables, bit for bit
        np.testing.assert_array_equal(ranks[0][name], ranks[1][name], err_msg=name)


def test_collectives_of_two_ranks():
    """allgather, Sum, fp16, broadcast from rank 1, and the gradient of allgather,
    checked on each rank."""
    done = launch(2, "collectives")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "collectives ok" in done.stdout


def test_a_rank_that_raises_fails_the_job_instead_of_hanging():
    done = launch(2, "fail", timeout=60)
    assert done.returncode != 0
    assert "rank 1 fails on purpose" in done.stderr
    assert "rank 1 of 2 failed with RuntimeError" in done.stderr


def test_a_collective_waiting_for_a_stuck_rank_times_out():
    done = launch(2, "hang", timeout=60, FLOWJIT_COLLECTIVE_TIMEOUT="2")
    assert done.returncode != 0
    assert "DeadlineExceededError" in done.stderr
    assert "waited 2 s for the other ranks" in done.stderr


def test_the_example_trains_on_two_ranks(tmp_path):
    done = launch(2, "--epochs", "2", "--model_dir", str(tmp_path), program=EXAMPLE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "processes: 2" in done.stdout and done.stdout.count("epoch ") == 2  # (rank 0)
    assert float(done.stdout.split("final test accuracy: ")[1]) > 0.8
    assert sorted(p.name for p in tmp_path.glob("model-*.index")) == ["model-44.index"]


# -- the bucketing pass -----------------------------------------------------------------------
GRADIENTS = """func @step(%w1: f32[4,3] {var="w1"}, %w2: f32[3] {var="w2"}, %g0: f32[4,3] {feed="g:0"}) {
  %0: f32[4,3] = mul %g0, %g0
  %1: f32[4,3] = allreduce %0 {compression="none", reduce_op="average", tensor="'g1'"}
  %2: f32[3] = reduce_sum %0 {axis=[0], keepdims=false}
  %3: f32[3] = allreduce %2 {compression="none", reduce_op="average", tensor="'g2'"}
  %4: f32[4,3] = sub %w1, %1
  %5: f32[3] = sub %w2, %3
  return %4 {var="w1"}, %5 {var="w2"}
}"""


def _ops(func):
    return [instr.op for instr in func.body]


def test_bucketing_fuses_the_allreduces_of_a_step_into_one():
    func = parse(GRADIENTS)
    fused, changed = bucket_allreduce.run(func, threshold=1 << 20)
    assert changed
    assert _ops(fused) == ["mul", "reduce_sum", "reshape", "reshape", "concatenate",
                           "allreduce_start", "allreduce_wait", "slice", "reshape", "slice",
                           "reshape", "sub", "sub"]
    assert "allreduce_start %" in print_func(fused) and "the bucket of 'g1', 'g2'" in \
        print_func(fused)
    assert parse(print_func(fused)) == fused  # (prints and parses back)
    g = np.arange(12, dtype=np.float32).reshape(4, 3)
    inputs = [np.ones((4, 3), np.float32), np.ones(3, np.float32), g]
    np.testing.assert_array_equal(np.concatenate([v.ravel() for v in evaluate(fused, inputs)]),
                                  np.concatenate([v.ravel() for v in evaluate(func, inputs)]))


def test_bucketing_starts_each_bucket_when_its_gradients_are_ready():
    """Under the threshold of one gradient, each is a bucket of its own, started right
    after it is computed and waited for just before its first use."""
    fused, changed = bucket_allreduce.run(parse(GRADIENTS), threshold=48)
    assert changed
    assert _ops(fused) == ["mul", "allreduce_start", "reduce_sum", "allreduce_start",
                           "allreduce_wait", "sub", "allreduce_wait", "sub"]


def test_bucketing_keeps_collectives_behind_other_effects():
    text = GRADIENTS.replace(
        "  %2: f32[3] =", "  %9: f32[4,3] = print %0 {first_n=-1, message=\"m\", "
        "summarize=3, token=\"print_0\"}\n  %2: f32[3] =")
    fused, _ = bucket_allreduce.run(parse(text), threshold=1 << 20)
    ops = _ops(fused)
    assert ops.index("print") < ops.index("allreduce_start", ops.index("allreduce_start") + 1)
    assert ops.count("allreduce_start") == 2  # (one each side of the print: not fused)


def test_cse_and_dce_keep_every_collective():
    text = """func @f(%x: f32[3] {feed="x:0"}) {
  %0: f32[3] = allreduce %x {compression="none", reduce_op="sum", tensor="'x'"}
  %1: f32[3] = allreduce %x {compression="none", reduce_op="sum", tensor="'x'"}
  %2: f32[3] = add %0, %1
  %3: f32[3] = broadcast %x {root_rank=0, tensor="'x'"}
  return %2 {fetch="y:0"}
}"""
    func = parse(text)
    assert cse.run(func) == (func, False)  # (two allreduces are two collectives)
    assert dce.run(func) == (func, False)  # (an unused broadcast still runs)


def test_bucketing_off_with_a_zero_threshold():
    func = parse(GRADIENTS)
    assert bucket_allreduce.run(func, threshold=0) == (func, False)


# -- the API in one process ---------------------------------------------------------------------
def test_single_process_world():
    hvd.init()
    assert (hvd.rank(), hvd.size(), hvd.local_rank(), hvd.local_size()) == (0, 1, 0, 1)
    assert hvd.is_initialized() and hvd.is_chief()


def test_collectives_of_one_rank_and_their_gradients():
    with tf.Graph().as_default():
        x = tf.constant([[1.0, 2.0], [3.0, 4.0]])
        total = hvd.allreduce(x, op=hvd.Sum)
        mean = hvd.allreduce(x, compression=hvd.Compression.fp16)
        gathered = hvd.allgather(x)
        same = hvd.broadcast(x, 0)
        twice = hvd.allreduce(x) + hvd.allreduce(x)  # two collectives: never merged by CSE
        (grad,) = tf.gradients(tf.reduce_sum(hvd.allreduce(x) * 3.0), [x])
        with tf.Session() as sess:
            values = sess.run([total, mean, gathered, same, twice, grad])
    for value in values[:4]:
        np.testing.assert_array_equal(value, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(values[4], [[2, 4], [6, 8]])
    np.testing.assert_array_equal(values[5], np.full((2, 2), 3.0))


def test_distributed_optimizer_of_one_rank_is_the_optimizer(tmp_path):
    def train(wrap):
        with tf.Graph().as_default():
            tf.set_random_seed(3)
            x = tf.constant(np.linspace(-1, 1, 12, dtype=np.float32).reshape(6, 2))
            w = tf.get_variable("w", [2, 1])
            loss = tf.reduce_mean(tf.square(tf.matmul(x, w) - 1.0))
            optimizer = tf.train.AdamOptimizer(0.1)
            train_op = (hvd.DistributedOptimizer(optimizer) if wrap else
                        optimizer).minimize(loss)
            with tf.Session() as sess:
                sess.run(tf.global_variables_initializer())
                sess.run(hvd.broadcast_global_variables(0))
                for _ in range(3):
                    sess.run(train_op)
                return sess.run(w)
    np.testing.assert_allclose(train(True), train(False), rtol=1e-6)


def test_bad_arguments_are_clear_errors():
    with tf.Graph().as_default():
        with pytest.raises(errors.InvalidArgumentError, match="op must be one of"):
            hvd.DistributedOptimizer(tf.train.GradientDescentOptimizer(0.1), op="max")
        with pytest.raises(errors.InvalidArgumentError, match="wraps a flowjit optimizer"):
            hvd.DistributedOptimizer(object())
        with pytest.raises(ValueError, match="numeric tensor"):
            hvd.allreduce(tf.constant([True]))
        with tf.Session() as sess, pytest.raises(errors.InvalidArgumentError,
                                                 match="root rank 3"):
            sess.run(hvd.broadcast(tf.constant([1.0]), 3))


def test_only_rank_0_writes_checkpoints_and_events(tmp_path, monkeypatch):
    from flowjit.runtime import mpi
    monkeypatch.setattr(mpi, "_world", mpi.World(None, None, rank=1, size=2, local_rank=1,
                                                 local_size=2))
    with tf.Graph().as_default():
        tf.Variable([1.0], name="v")
        saver = tf.train.Saver()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            path = saver.save(sess, str(tmp_path / "model"), global_step=3)
        writer = tf.summary.FileWriter(str(tmp_path / "logs"), graph=tf.get_default_graph())
        writer.close()
    assert path == str(tmp_path / "model-3")
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == []
    assert not any((tmp_path / "logs").glob("events.*"))


def test_cores_are_shared_out_with_one_left_for_communication():
    from flowjit.runtime.mpi import plan_cores
    assert plan_cores(list(range(16)), 1, 2, None) == ([7, 8, 9, 10, 11, 12, 13], [15])
    assert plan_cores(list(range(16)), 0, 2, 2) == ([0, 1], [15])
    assert plan_cores([0, 1], 1, 2, None) == ([1], [1])  # nothing to spare


def test_flowjitrun_finds_the_launcher_and_needs_a_command():
    command = flowjitrun.launcher_command(flowjitrun.find_launcher(), 3, ["python", "x.py"])
    assert command[1:3] == ["-n", "3"] and command[-2:] == ["python", "x.py"]
    with pytest.raises(SystemExit):
        flowjitrun.main(["-np", "2"])
