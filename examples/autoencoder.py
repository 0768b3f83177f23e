"""An autoencoder trained with RMSProp, as in the seed talk "'Hello World!'" (4_example.py):
784 -> 256 -> 64 -> 256 -> 784, sigmoid layers, squared reconstruction error,
`RMSPropOptimizer(0.01)` through `compute_gradients`/`apply_gradients`. The initial weights
have stddev 0.1: with the slide's `tf.random_normal` (stddev 1.0; `--init_stddev 1`) the
sigmoids start saturated and 2,000 steps end at a test loss of 0.104, worse than predicting
the mean image (0.024); with 0.1 they reach 0.003.

The talk's MNIST comes from `input_data.read_data_sets`; FLOWJIT_MNIST=digits (the default
here) gives the offline digits in its place.

    python examples/autoencoder.py [--max_iterations 2000] [--batch_size 100]
"""
import os

import numpy as np

os.environ.setdefault("FLOWJIT_MNIST", "digits")  # before flowjit reads its settings
import flowjit as tf  # noqa: E402
from flowjit.examples.tutorials.mnist import input_data  # noqa: E402

flags = tf.app.flags
flags.DEFINE_integer("max_iterations", 2000, "training steps")
flags.DEFINE_integer("batch_size", 100, "examples per step")
flags.DEFINE_float("learning_rate", 0.01, "RMSProp's learning rate")
flags.DEFINE_float("init_stddev", 0.1, "stddev of the initial weights (the talk's: 1.0)")
FLAGS = flags.FLAGS


def main(_):
    mnist = input_data.read_data_sets("/tmp/data/", one_hot=True)
    tf.set_random_seed(0)
    weights = {
        'encoder_w1': tf.Variable(tf.random_normal([784, 256], stddev=FLAGS.init_stddev)),
        'encoder_w2': tf.Variable(tf.random_normal([256, 64], stddev=FLAGS.init_stddev)),
        'decoder_w1': tf.Variable(tf.random_normal([64, 256], stddev=FLAGS.init_stddev)),
        'decoder_w2': tf.Variable(tf.random_normal([256, 784], stddev=FLAGS.init_stddev))
    }
    biases = {
        'encoder_b1': tf.Variable(tf.random_normal([256], stddev=FLAGS.init_stddev)),
        'encoder_b2': tf.Variable(tf.random_normal([64], stddev=FLAGS.init_stddev)),
        'decoder_b1': tf.Variable(tf.random_normal([256], stddev=FLAGS.init_stddev)),
        'decoder_b2': tf.Variable(tf.random_normal([784], stddev=FLAGS.init_stddev))
    }

    def encoder(x):
        layer_1 = tf.nn.sigmoid(tf.add(tf.matmul(x, weights['encoder_w1']),
                                       biases['encoder_b1']))
        return tf.nn.sigmoid(tf.add(tf.matmul(layer_1, weights['encoder_w2']),
                                    biases['encoder_b2']))

    def decoder(x):
        layer_1 = tf.nn.sigmoid(tf.add(tf.matmul(x, weights['decoder_w1']),
                                       biases['decoder_b1']))
        return tf.nn.sigmoid(tf.add(tf.matmul(layer_1, weights['decoder_w2']),
                                    biases['decoder_b2']))

    x_in = tf.placeholder(tf.float32, [None, 784])
    y_pred = decoder(encoder(x_in))
    # In this case we use the L2 distance
    loss = tf.reduce_mean(tf.pow(x_in - y_pred, 2))
    optimizer = tf.train.RMSPropOptimizer(learning_rate=FLAGS.learning_rate)
    gradients = optimizer.compute_gradients(loss)
    train_step = optimizer.apply_gradients(gradients)

    test = mnist.test.images
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        print("step 0 test loss %.4f" % sess.run(loss, {x_in: test}))
        every = max(FLAGS.max_iterations // 5, 1)
        for i in range(1, FLAGS.max_iterations + 1):
            batch_xs, _ = mnist.train.next_batch(FLAGS.batch_size)
            _, value = sess.run([train_step, loss], feed_dict={x_in: batch_xs})
            if i % every == 0 or i == FLAGS.max_iterations:
                print("step %d train loss %.4f test loss %.4f"
                      % (i, value, sess.run(loss, {x_in: test})))
        final = sess.run(loss, {x_in: test})
    mean_image = np.mean(mnist.train.images, axis=0)
    print("baseline test loss (the mean image): %.4f" % np.mean((test - mean_image) ** 2))
    print("final test loss: %.4f" % final)


if __name__ == "__main__":
    tf.app.run()
