"""flowjit's demo (`make demo`): a TF1 program trains an MLP on handwritten digits with the
compiled (LLVM) backend, and shows what is around it.

It trains 784-256-128-10 with Adam on the offline digits (`flowjit.datasets.load_digits`)
with a progress bar, prints the test accuracy, runs the last step again on the eager
interpreter from the same state and prints how far the two backends' results are apart,
writes TensorBoard logs (scalars, histograms, images, the graph, a traced step), a PNG of
the loss and accuracy curves, a Chrome trace, the training step's optimized IR and a
picture of it, saves a checkpoint (TensorFlow's format), restores it in a fresh Session and
checks the accuracy is the same. Everything goes under runs/demo/.

    python examples/demo.py [--steps 600] [--batch_size 64] [--outdir runs/demo]
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import flowjit as tf
from flowjit import debug
from flowjit.config import config
from flowjit.datasets import load_digits
from flowjit.ir.dot import func_to_nx, to_dot
from flowjit.ir.printer import print_func

ROOT = Path(__file__).resolve().parents[1]
flags = tf.app.flags
flags.DEFINE_integer("steps", 600, "training steps")
flags.DEFINE_integer("batch_size", 64, "examples per step")
flags.DEFINE_float("learning_rate", 1e-3, "Adam's learning rate")
flags.DEFINE_integer("log_every", 20, "steps between summaries and test evaluations")
flags.DEFINE_string("outdir", str(ROOT / "runs" / "demo"), "where everything goes")
FLAGS = flags.FLAGS


def build_model():
    """The graph: placeholders, a 784-256-128-10 ReLU MLP, loss, Adam, summaries."""
    tf.set_random_seed(0)
    x = tf.placeholder(tf.float32, [None, 784], name="x")
    y = tf.placeholder(tf.int64, [None], name="y")
    layer = x
    for name, width in (("hidden1", 256), ("hidden2", 128), ("logits", 10)):
        with tf.variable_scope(name):
            w = tf.get_variable("W", [layer.shape[1], width],
                                initializer=tf.glorot_uniform_initializer())
            b = tf.get_variable("b", [width], initializer=tf.zeros_initializer())
            layer = tf.matmul(layer, w) + b
            if name != "logits":
                layer = tf.nn.relu(layer)
            tf.summary.histogram("weights", w)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=y, logits=layer), name="loss")
    global_step = tf.train.get_or_create_global_step()
    train = tf.train.AdamOptimizer(FLAGS.learning_rate).minimize(
        loss, global_step=global_step, name="train_step")
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(layer, 1), y), tf.float32),
                              name="accuracy")
    with tf.name_scope("train"):  # tags "train/loss", "train/accuracy" (of the batch)
        tf.summary.scalar("loss", loss)
        tf.summary.scalar("accuracy", accuracy)
    tf.summary.image("inputs", tf.reshape(x, [-1, 28, 28, 1]), max_outputs=3)
    return x, y, loss, train, accuracy, tf.summary.merge_all()


def progress(steps):
    try:
        from tqdm import tqdm
    except ImportError:
        raise SystemExit("the demo's progress bar needs tqdm: pip install 'flowjit[examples]'")
    return tqdm(range(steps), unit="step", ncols=100, file=sys.stdout)


def train(sess, model, digits, writer):
    """The training loop; returns the feed of the last step (not run yet) and the curves."""
    x, y, loss, train_op, accuracy, merged = model
    test_feed = {x: digits.test.images, y: digits.test.labels}
    curves = {"step": [], "loss": [], "test_step": [], "test_accuracy": []}
    bar = progress(FLAGS.steps - 1)
    started, seen = None, 0  # (examples/s from the second step on: the first compiles)
    for step in bar:
        images, labels = digits.train.next_batch(FLAGS.batch_size)
        feed = {x: images, y: labels}
        if step % FLAGS.log_every == 0:
            value, _, summary = sess.run([loss, train_op, merged], feed)
            writer.add_summary(summary, step)
            test_accuracy = sess.run(accuracy, test_feed)
            curves["test_step"].append(step)
            curves["test_accuracy"].append(float(test_accuracy))
        else:
            value, _ = sess.run([loss, train_op], feed)
        curves["step"].append(step)
        curves["loss"].append(float(value))
        if started is None:
            started = time.perf_counter()
        else:
            seen += len(images)
            rate = seen / (time.perf_counter() - started)
            bar.set_postfix(loss=f"{value:.4f}", examples_per_s=f"{rate:,.0f}", refresh=False)
    bar.close()
    images, labels = digits.train.next_batch(FLAGS.batch_size)
    return {x: images, y: labels}, curves


def check_against_eager(sess, model, feed):
    """Runs the last step on both backends from the same state; the largest difference of
    the loss and of every variable's new value."""
    loss, train_op = model[2], model[3]
    variables = tf.global_variables()
    state = sess.run(variables)
    eager = tf.Session(backend="eager")
    for variable, value in zip(variables, state):
        variable.load(value, eager)
    compiled_loss, _ = sess.run([loss, train_op], feed)
    eager_loss, _ = eager.run([loss, train_op], feed)
    worst = abs(float(compiled_loss) - float(eager_loss))
    for compiled, interpreted in zip(sess.run(variables), eager.run(variables)):
        worst = max(worst, float(np.max(np.abs(np.asarray(compiled, np.float64) -
                                               np.asarray(interpreted, np.float64)))))
    eager.close()
    return float(compiled_loss), worst


def trace_a_step(sess, model, feed, writer, outdir):
    """One traced step: its per-kernel timings to TensorBoard and to a Chrome trace."""
    metadata = tf.RunMetadata()
    sess.run(model[2], feed, options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE),
             run_metadata=metadata)
    writer.add_run_metadata(metadata, "loss")
    path = outdir / "timeline.json"
    path.write_text(tf.python.client.timeline.Timeline(metadata.step_stats)
                    .generate_chrome_trace_format())
    return path, len(metadata.step_stats.dev_stats[0].node_stats)


def plot_curves(curves, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("the demo's plot needs matplotlib: pip install 'flowjit[examples]'")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(curves["step"], curves["loss"], linewidth=0.8)
    left.set(title="training loss", xlabel="step", yscale="log")
    right.plot(curves["test_step"], curves["test_accuracy"], marker=".")
    right.set(title="test accuracy", xlabel="step", ylim=(0, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_step(sess, model, feed, outdir):
    """The training step's optimized IR, as text and as a Graphviz drawing."""
    func = debug.optimized_func(sess, [model[2], model[3]], feed)
    (outdir / "train_step.ir").write_text(print_func(func, elide_constants_over=16))
    graph = func_to_nx(func)
    dot_path = outdir / "train_step.dot"
    dot_path.write_text(to_dot(graph))
    svg = outdir / "train_step.svg"
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg", str(dot_path), "-o", str(svg)], check=True)
        return svg, None
    png = outdir / "train_step.png"
    draw_layers(graph, png)
    return png, (f"Graphviz draws a better one (apt-get install graphviz):\n"
                 f"{'':19}dot -Tsvg {shown_path(dot_path)} -o {shown_path(svg)}")


def draw_layers(graph, path):
    """Without Graphviz: the graph drawn by networkx and matplotlib, inputs at the top and
    one row per topological generation."""
    import matplotlib.pyplot as plt
    import networkx as nx
    rows = list(nx.topological_generations(graph))
    for depth, nodes in enumerate(rows):
        for node in nodes:
            graph.nodes[node]["depth"] = -depth
    position = nx.multipartite_layout(graph, subset_key="depth", align="horizontal")
    labels = {node: data["label"].split("\n")[0][:24] for node, data in graph.nodes(data=True)}
    widest = max(len(nodes) for nodes in rows)
    fig, ax = plt.subplots(figsize=(max(8, 0.8 * widest), max(6, 1.1 * len(rows))))
    colors = ["#cfe2f3" if data["shape"] == "box" else "#d9ead3"
              for _, data in graph.nodes(data=True)]
    nx.draw_networkx(graph, position, ax=ax, labels=labels, node_color=colors,
                     node_shape="s", node_size=600, font_size=6, arrowsize=6, width=0.5)
    ax.set_title(f"@{graph.name}: the optimized training step (flowjit IR)")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def shown_path(path):
    """`path` relative to the working directory when it is under it, else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(_):
    outdir = Path(FLAGS.outdir)
    if outdir.exists():
        shutil.rmtree(outdir)
    (outdir / "checkpoints").mkdir(parents=True)
    digits = load_digits()
    print(f"digits: {digits.train.num_examples} training, {digits.test.num_examples} test "
          f"images of 28x28; backend: {config.backend}")
    model = build_model()
    x, y, loss, _, accuracy, _ = model
    test_feed = {x: digits.test.images, y: digits.test.labels}
    saver = tf.train.Saver()
    with tf.Session() as sess, tf.summary.FileWriter(str(outdir / "logs"), sess.graph) as writer:
        sess.run(tf.global_variables_initializer())
        feed, curves = train(sess, model, digits, writer)
        last_loss, difference = check_against_eager(sess, model, feed)
        curves["step"].append(FLAGS.steps - 1)
        curves["loss"].append(last_loss)
        test_accuracy = float(sess.run(accuracy, test_feed))
        curves["test_step"].append(FLAGS.steps)
        curves["test_accuracy"].append(test_accuracy)
        print(f"test accuracy: {test_accuracy:.4f} ({digits.test.num_examples} digits)")
        print(f"last step on {config.backend} vs the eager interpreter: max |difference| = "
              f"{difference:.3g} (loss and every variable)")
        timeline, spans = trace_a_step(sess, model, test_feed, writer, outdir)
        picture, render = draw_step(sess, model, feed, outdir)
        checkpoint = saver.save(sess, str(outdir / "checkpoints" / "model"),
                                global_step=FLAGS.steps)
    with tf.Session() as fresh:
        saver.restore(fresh, checkpoint)
        restored = float(fresh.run(accuracy, test_feed))
    same = restored == test_accuracy
    print(f"restored {checkpoint} in a fresh Session: test accuracy {restored:.4f} "
          f"({'the same' if same else 'DIFFERENT'})")
    plot_curves(curves, outdir / "curves.png")
    (outdir / "metrics.json").write_text(json.dumps(
        {"test_accuracy": test_accuracy, "restored_accuracy": restored,
         "eager_max_abs_difference": difference, "final_loss": last_loss}, indent=1))
    where = shown_path(outdir)
    print(f"""
Everything is under {where}/:
  logs/            TensorBoard: .venv/bin/tensorboard --logdir {where}/logs
                   (scalars, histograms, input images, the graph, a traced step)
  curves.png       loss and test accuracy
  timeline.json    the traced step's {spans} spans: open in chrome://tracing or ui.perfetto.dev
  train_step.ir    the training step's optimized IR
  {picture.name:<16} a picture of it{f'; {render}' if render else ''}
  checkpoints/     {os.path.basename(checkpoint)}.index/.data/.meta (TensorFlow's format)
The IR of every compiled step at every compiler stage (ir.ir, NN-<pass>.ir, opt.ir, .dot):
  .venv/bin/flowjit-dump examples/demo.py --out runs/ir --dot -- --steps 20 --outdir /tmp/demo""")
    return 0 if same and difference < 1e-3 else 1


if __name__ == "__main__":
    tf.app.run()
