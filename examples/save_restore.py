"""Saving and restoring a model. The model is the MLP of the seed talk "Introduction to Deep
Learning with TensorFlow" (Raschka, 2017), built with its `fully_connected` wrapper (slide
55; its initial weights with stddev 0.1, where the slide's 0.01 leaves 10 epochs at 30%
test accuracy) and trained by `minimize` (slide 51) on the offline digits. A `tf.train.Saver` writes
checkpoints in TensorFlow's own format; a fresh graph imports the `.meta` graph, restores
the latest checkpoint into a new Session and must get the same test accuracy.

    python examples/save_restore.py [--epochs 10] [--checkpoint_dir runs/save_restore]
"""
import numpy as np

import flowjit as tf
from flowjit.datasets import load_digits

flags = tf.app.flags
flags.DEFINE_integer("epochs", 10, "passes over the training data")
flags.DEFINE_integer("batch_size", 50, "examples per step")
flags.DEFINE_float("learning_rate", 0.1, "gradient descent step size")
flags.DEFINE_string("checkpoint_dir", "runs/save_restore", "where the checkpoints go")
FLAGS = flags.FLAGS

n_input, n_hidden_1, n_hidden_2, n_classes = 784, 128, 64, 10


def fully_connected(input_tensor, output_nodes, activation=None, seed=None,
                    name='fully_connected'):
    with tf.variable_scope(name):
        input_nodes = input_tensor.get_shape().as_list()[1]
        weights = tf.Variable(tf.truncated_normal(shape=(input_nodes, output_nodes),
                                                  mean=0.0, stddev=0.1, dtype=tf.float32,
                                                  seed=seed), name='weights')
        biases = tf.Variable(tf.zeros(shape=[output_nodes]), name='biases')
        act = tf.matmul(input_tensor, weights) + biases
        if activation is not None:
            act = activation(act)
        return act


def build():
    tf_x = tf.placeholder(tf.float32, [None, n_input], name='features')
    tf_y = tf.placeholder(tf.float32, [None, n_classes], name='targets')
    h1 = fully_connected(tf_x, n_hidden_1, activation=tf.nn.relu, seed=1, name='fc1')
    h2 = fully_connected(h1, n_hidden_2, activation=tf.nn.relu, seed=2, name='fc2')
    out = fully_connected(h2, n_classes, seed=3, name='out')
    loss = tf.nn.softmax_cross_entropy_with_logits(logits=out, labels=tf_y)
    cost = tf.reduce_mean(loss, name='cost')
    optimizer = tf.train.GradientDescentOptimizer(learning_rate=FLAGS.learning_rate)
    optimizer.minimize(cost, name='train')
    correct = tf.equal(tf.argmax(out, 1), tf.argmax(tf_y, 1))
    tf.reduce_mean(tf.cast(correct, tf.float32), name='accuracy')


def main(_):
    digits = load_digits(one_hot=True)
    test_feed = {'features:0': digits.test.images, 'targets:0': digits.test.labels}
    g = tf.Graph()
    with g.as_default():
        build()
        saver = tf.train.Saver(max_to_keep=2)
    tf.gfile.MakeDirs(FLAGS.checkpoint_dir)
    with tf.Session(graph=g) as sess:
        sess.run(tf.global_variables_initializer())
        total_batch = digits.train.num_examples // FLAGS.batch_size
        for epoch in range(FLAGS.epochs):
            avg_cost = 0.
            for _ in range(total_batch):
                batch_x, batch_y = digits.train.next_batch(FLAGS.batch_size)
                _, c = sess.run(['train', 'cost:0'], feed_dict={'features:0': batch_x,
                                                                'targets:0': batch_y})
                avg_cost += c / total_batch
            path = saver.save(sess, FLAGS.checkpoint_dir + "/model", global_step=epoch + 1)
            print("epoch %d cost %.4f saved %s" % (epoch + 1, avg_cost, path))
        trained = sess.run('accuracy:0', test_feed)
    print("test accuracy after training: %.4f" % trained)

    latest = tf.train.latest_checkpoint(FLAGS.checkpoint_dir)
    with tf.Graph().as_default():
        restorer = tf.train.import_meta_graph(latest + ".meta")
        with tf.Session() as sess:
            restorer.restore(sess, latest)
            restored = sess.run('accuracy:0', test_feed)
    print("restored %s (kept: %s)" % (latest, ", ".join(saver.last_checkpoints)))
    print("test accuracy after restoring: %.4f (%s)"
          % (restored, "the same" if restored == trained else "DIFFERENT"))
    print("final test accuracy: %.4f" % restored)
    return 0 if np.isclose(restored, trained, rtol=0, atol=0) else 1


if __name__ == "__main__":
    tf.app.run()
