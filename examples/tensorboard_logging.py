"""TensorBoard logging, as in the seed talk "'Hello World!'" (2_example.py and 3_example.py):
a softmax regression (`--model softmax`, the talk's 89.73%) or a sigmoid MLP 784-256-128-10
(`--model mlp`, 92.90%) trained with `compute_gradients`/`apply_gradients`, with the loss and
accuracy as scalar summaries, the weights as histograms and a few inputs as images, merged
with `tf.summary.merge_all()` and written by a `FileWriter` that also gets the graph.

The talk's MNIST comes from `input_data.read_data_sets`; set FLOWJIT_MNIST=digits (the
default here) to use the offline digits in its place. The slide's cost,
`reduce_mean([- y_pred * tf.log(y_in)])`, takes the log of the labels (infinite for the
zeros of a one-hot vector); this is the cross-entropy it means, -y_in * log(y_pred).

    python examples/tensorboard_logging.py [--model mlp] [--logdir runs/tensorboard_logging]
    tensorboard --logdir runs/tensorboard_logging
"""
import os

import numpy as np

os.environ.setdefault("FLOWJIT_MNIST", "digits")  # before flowjit reads its settings
import flowjit as tf  # noqa: E402
from flowjit.examples.tutorials.mnist import input_data  # noqa: E402

flags = tf.app.flags
flags.DEFINE_enum("model", "softmax", ["softmax", "mlp"], "2_example (softmax) or 3_example")
flags.DEFINE_integer("max_iterations", 1000, "training steps")
flags.DEFINE_integer("batch_size", 100, "examples per step")
flags.DEFINE_float("learning_rate", 0.5, "gradient descent step size")
flags.DEFINE_integer("summary_every", 10, "steps between summaries (the talk: every step)")
flags.DEFINE_string("logdir", "runs/tensorboard_logging", "where the event files go")
FLAGS = flags.FLAGS


def inference(x_in):
    tf.set_random_seed(0)
    if FLAGS.model == "softmax":
        weights = {'w1': tf.Variable(tf.random_normal([784, 10]), name='w1')}
        biases = {'b1': tf.Variable(tf.random_normal([10]), name='b1')}
        y = tf.matmul(x_in, weights['w1']) + biases['b1']
    else:
        weights = {'w1': tf.Variable(tf.random_normal([784, 256]), name='w1'),
                   'w2': tf.Variable(tf.random_normal([256, 128]), name='w2'),
                   'w3': tf.Variable(tf.random_normal([128, 10]), name='w3')}
        biases = {'b1': tf.Variable(tf.random_normal([256]), name='b1'),
                  'b2': tf.Variable(tf.random_normal([128]), name='b2'),
                  'b3': tf.Variable(tf.random_normal([10]), name='b3')}
        y = tf.nn.sigmoid(tf.matmul(x_in, weights['w1']) + biases['b1'])  # INPUT LAYER
        y = tf.nn.sigmoid(tf.matmul(y, weights['w2']) + biases['b2'])  # HIDDEN LAYER 1
        y = tf.matmul(y, weights['w3']) + biases['b3']  # HIDDEN LAYER 2
    for name, w in weights.items():
        tf.summary.histogram("weights_" + name, w)
    return tf.nn.softmax(y)  # PREDICTION


def main(_):
    mnist = input_data.read_data_sets("/tmp/data/", one_hot=True)
    x_in = tf.placeholder(tf.float32, [None, 784], name="x_in")
    y_in = tf.placeholder(tf.float32, [None, 10], name="y_in")
    y_pred = inference(x_in)
    # Cost Function. Compare predictions with true labels
    cross_entropy = tf.reduce_mean(
        -tf.reduce_sum(y_in * tf.log(tf.clip_by_value(y_pred, 1e-10, 1.0)), axis=1))
    # Optimization
    optimizer = tf.train.GradientDescentOptimizer(learning_rate=FLAGS.learning_rate)
    gradients = optimizer.compute_gradients(cross_entropy)
    train_step = optimizer.apply_gradients(gradients)
    correct = tf.equal(tf.argmax(y_pred, 1), tf.argmax(y_in, 1))
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    tf.summary.scalar("loss", cross_entropy)
    tf.summary.scalar("accuracy", accuracy)
    tf.summary.image("input", tf.reshape(x_in, [-1, 28, 28, 1]), max_outputs=3)
    merged = tf.summary.merge_all()

    with tf.Session() as sess:
        writer = tf.summary.FileWriter(FLAGS.logdir, sess.graph)  # TensorBoard writer
        tf.global_variables_initializer().run()
        for i in range(FLAGS.max_iterations):
            batch_xs, batch_ys = mnist.train.next_batch(FLAGS.batch_size)
            feed = {x_in: batch_xs, y_in: batch_ys}
            if i % FLAGS.summary_every == 0:
                _, loss, summ = sess.run([train_step, cross_entropy, merged], feed_dict=feed)
                writer.add_summary(summ, i)
            else:
                _, loss = sess.run([train_step, cross_entropy], feed_dict=feed)
            if i % max(FLAGS.max_iterations // 5, 1) == 0 or i == FLAGS.max_iterations - 1:
                print("step %d loss %.4f" % (i, loss))
        writer.close()
        final = sess.run(accuracy, {x_in: mnist.test.images, y_in: mnist.test.labels})
    print("final test accuracy: %.4f" % final)
    print("event files in %s: tensorboard --logdir %s" % (FLAGS.logdir, FLAGS.logdir))


if __name__ == "__main__":
    tf.app.run()
