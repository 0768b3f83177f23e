"""The program around the model: tf.app.run and flags, tf.logging, tf.gfile, the session
protos (ConfigProto, RunOptions/RunMetadata) and the Chrome-trace timeline."""
import json
import os

import numpy as np
import pytest

import flowjit as tf
from flowjit import errors
from flowjit.platform import flags as flags_module

tf.app.flags.DEFINE_integer("scaffold_steps", 10, "training steps")
tf.flags.DEFINE_boolean("scaffold_fast", False, "go fast")


@pytest.fixture
def flag_values():
    values = flags_module.FlagValues()
    flags = tf.app.flags
    flags.DEFINE_string("data_dir", "/tmp/data", "where the data is", flag_values=values)
    flags.DEFINE_integer("batch_size", 100, "examples per step", flag_values=values)
    flags.DEFINE_float("learning_rate", 0.01, "step size", flag_values=values)
    flags.DEFINE_boolean("fake", False, "use fake data", flag_values=values)
    flags.DEFINE_bool("shuffle", True, "shuffle", flag_values=values)
    flags.DEFINE_list("layers", "128,64", "layer sizes", flag_values=values)
    return values


def test_flags_parse_every_form(flag_values):
    rest = flag_values(["prog", "--data_dir=/d", "--batch_size", "32", "input.txt",
                        "--learning_rate=1e-3", "--fake", "--noshuffle", "--layers=a,b,c",
                        "--", "--batch_size=1"])
    assert rest == ["prog", "input.txt", "--batch_size=1"]
    assert flag_values.flag_values_dict() == {
        "data_dir": "/d", "batch_size": 32, "learning_rate": 1e-3, "fake": True,
        "shuffle": False, "layers": ["a", "b", "c"]}


def test_flags_read_sys_argv_on_first_access(flag_values, monkeypatch):
    monkeypatch.setattr("sys.argv", ["prog", "--batch_size=5", "--unknown=1"])
    assert not flag_values.is_parsed()
    assert flag_values.batch_size == 5 and flag_values.is_parsed()
    assert flag_values.layers == ["128", "64"]  # a string default is parsed as the flag is


def test_flags_defaults_and_errors(flag_values):
    with pytest.raises(flags_module.FlagsError, match="--batch_size='many'.*integer"):
        flag_values(["prog", "--batch_size=many"])
    with pytest.raises(flags_module.FlagsError, match="Unknown command line flag 'epochs'"):
        flag_values(["prog", "--epochs=3"])
    assert flag_values(["prog", "--epochs=3"], known_only=True) == ["prog", "--epochs=3"]
    with pytest.raises(flags_module.FlagsError, match="defined twice"):
        tf.flags.DEFINE_string("data_dir", "", "", flag_values=flag_values)
    with pytest.raises(AttributeError, match="no flag named 'nope'"):
        flag_values.nope
    flag_values.batch_size = 7
    assert flag_values.batch_size == 7


def test_app_run_parses_flags_and_exits_with_main(capsys):
    tf.flags.FLAGS.reset()
    seen = []

    def main(argv):
        seen.append((argv, tf.flags.FLAGS.scaffold_steps, tf.flags.FLAGS.scaffold_fast))
        return 3

    with pytest.raises(SystemExit) as exited:
        tf.app.run(main, argv=["train.py", "--scaffold_steps=50", "--scaffold_fast", "extra"])
    assert exited.value.code == 3
    assert seen == [(["train.py", "extra"], 50, True)]
    with pytest.raises(SystemExit) as exited:
        tf.app.run(main, argv=["train.py", "--scaffold_steps=x"])
    assert exited.value.code == 2
    assert "--scaffold_steps='x'" in capsys.readouterr().err
    tf.flags.FLAGS.reset()


def test_logging_levels(capsys):
    tf.logging.set_verbosity(tf.logging.INFO)
    tf.logging.info("step %d", 5)
    tf.logging.debug("hidden")
    tf.logging.set_verbosity(tf.logging.WARN)
    tf.logging.info("hidden too")
    tf.logging.warn("careful")
    for i in range(5):
        tf.logging.log_every_n(tf.logging.ERROR, "every %d", 2, i)
    assert tf.logging.get_verbosity() == tf.logging.WARN
    assert capsys.readouterr().err.splitlines() == [
        "INFO:tensorflow:step 5", "WARNING:tensorflow:careful", "ERROR:tensorflow:every 0",
        "ERROR:tensorflow:every 2", "ERROR:tensorflow:every 4"]


def test_gfile(tmp_path):
    gfile = tf.gfile
    root = str(tmp_path / "a")
    gfile.MakeDirs(os.path.join(root, "b", "c"))
    gfile.MakeDirs(os.path.join(root, "b"))  # exists: fine
    with gfile.GFile(os.path.join(root, "x.txt"), "w") as f:
        f.write("one\ntwo\n")
    with gfile.FastGFile(os.path.join(root, "x.txt"), "rb") as f:
        assert f.read() == b"one\ntwo\n" and f.size() == 8
    assert list(gfile.Open(os.path.join(root, "x.txt"))) == ["one\n", "two\n"]
    assert gfile.Exists(root) and gfile.IsDirectory(root)
    assert not gfile.IsDirectory(os.path.join(root, "x.txt"))
    assert gfile.ListDirectory(root) == ["b", "x.txt"]
    assert gfile.Glob(os.path.join(root, "*.txt")) == [os.path.join(root, "x.txt")]
    gfile.Copy(os.path.join(root, "x.txt"), os.path.join(root, "b", "y.txt"))
    with pytest.raises(errors.AlreadyExistsError, match="y.txt"):
        gfile.Copy(os.path.join(root, "x.txt"), os.path.join(root, "b", "y.txt"))
    gfile.Rename(os.path.join(root, "b", "y.txt"), os.path.join(root, "b", "c", "z.txt"))
    assert list(gfile.Walk(root)) == [(root, ["b"], ["x.txt"]),
                                      (os.path.join(root, "b"), ["c"], []),
                                      (os.path.join(root, "b", "c"), [], ["z.txt"])]
    assert [d for d, _, _ in gfile.Walk(root, in_order=False)][-1] == root
    assert gfile.Stat(os.path.join(root, "x.txt")).length == 8
    gfile.Remove(os.path.join(root, "x.txt"))
    for missing in (lambda: gfile.Remove(os.path.join(root, "x.txt")),
                    lambda: gfile.GFile(os.path.join(root, "x.txt")),
                    lambda: gfile.ListDirectory(os.path.join(root, "nope"))):
        with pytest.raises(errors.NotFoundError, match="x.txt|nope"):
            missing()
    gfile.DeleteRecursively(root)
    assert not gfile.Exists(root)
    with pytest.raises(errors.NotFoundError):
        gfile.DeleteRecursively(root)


def test_session_config_and_run_trace():
    config = tf.ConfigProto(gpu_options=tf.GPUOptions(allow_growth=True,
                                                      per_process_gpu_memory_fraction=0.5),
                            allow_soft_placement=True, log_device_placement=False)
    x = tf.placeholder(tf.float32, [None, 3], name="x")
    y = tf.reduce_sum(x * 2.0, name="total")
    with tf.Session(config=config) as sess:
        untraced = tf.RunMetadata()
        sess.run(y, {x: [[1.0, 2.0, 3.0]]}, run_metadata=untraced)
        assert not untraced.step_stats.dev_stats  # no trace asked
        options = tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE)
        first, second = tf.RunMetadata(), tf.RunMetadata()
        assert sess.run(y, {x: [[1.0, 2.0, 3.0], [1, 1, 1]]}, options=options,
                        run_metadata=first) == 18.0  # a new batch size: compiled
        sess.run(y, {x: [[1.0, 2.0, 3.0]]}, options=options, run_metadata=second)
    names = [[n.node_name for n in md.step_stats.dev_stats[0].node_stats
              if n.node_name.startswith("flowjit/")] for md in (first, second)]
    assert names == [["flowjit/compile", "flowjit/execute", "flowjit/commit"],
                     ["flowjit/cache lookup", "flowjit/execute", "flowjit/commit"]]
    trace = json.loads(tf.python.client.timeline.Timeline(first.step_stats)
                       .generate_chrome_trace_format())
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"
             and e["args"]["name"].startswith("flowjit/")]
    assert [e["name"] for e in spans] == ["compile", "execute", "commit"]
    assert all(e["dur"] >= 0 for e in spans)
    assert all(a["ts"] + a["dur"] <= b["ts"] for a, b in zip(spans, spans[1:]))
    assert "total:0" in spans[1]["args"]["op"]
    assert any(e["ph"] == "M" and "CPU:0" in e["args"].get("name", "")
               for e in trace["traceEvents"])


def test_a_traced_run_times_each_kernel_inside_execute():
    """Per-kernel timings: native segments and kernels and numpy thunks on the LLVM backend,
    each instruction on the eager one, named by the user's ops, within the execute span."""
    from flowjit.config import config
    x = tf.placeholder(tf.float32, [64, 32], name="x")
    labels = tf.placeholder(tf.int64, [64], name="labels")
    with tf.variable_scope("dense"):
        w = tf.get_variable("W", [32, 10])
        logits = tf.nn.relu(tf.matmul(x, w))
    hot = tf.one_hot(labels, 10, name="hot")  # no native kernel: a numpy thunk
    loss = tf.reduce_mean(tf.square(logits - hot), name="loss")
    metadata = tf.RunMetadata()
    feed = {x: np.ones((64, 32), np.float32), labels: np.arange(64) % 10}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        value = sess.run(loss, feed, run_metadata=metadata,
                         options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE))
        assert value == sess.run(loss, feed)
    nodes = metadata.step_stats.dev_stats[0].node_stats
    execute = next(n for n in nodes if n.node_name == "flowjit/execute")
    kernels = [n for n in nodes if not n.node_name.startswith("flowjit/")]
    assert kernels
    for node in kernels:
        assert execute.all_start_micros <= node.all_start_micros
        assert node.all_start_micros + node.all_end_rel_micros <= \
            execute.all_start_micros + execute.all_end_rel_micros
    kinds = {n.timeline_label.split(":")[0] for n in kernels}
    described = " ".join(n.node_name for n in kernels)
    assert "hot" in described and ("dense/MatMul" in described or "dense/Relu" in described)
    if config.backend == "eager":
        assert "eager OneHot" in kinds and any(k.startswith("eager Fusion") for k in kinds)
    else:
        assert "numpy OneHot" in kinds
        assert any(kind.startswith("native") for kind in kinds)
    trace = json.loads(tf.python.client.timeline.Timeline(metadata.step_stats)
                       .generate_chrome_trace_format())
    names = {e["name"] for e in trace["traceEvents"] if e["ph"] == "X"}
    assert kinds <= names and "execute" in names
