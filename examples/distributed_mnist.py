"""Data-parallel training of an MLP on handwritten digits, Horovod-style: every process
trains on its own shard of the data, DistributedOptimizer averages the gradients over the
processes (MPI allreduce), and rank 0's initial variables are broadcast to all. Only rank 0
prints and writes the checkpoint. The digits are scikit-learn's, drawn 28x28 like MNIST
(`flowjit.datasets.load_digits`: no download); `--mnist` reads the real MNIST files.

    flowjitrun -np 2 python examples/distributed_mnist.py [--epochs 10]
    python examples/distributed_mnist.py          (one process: the same program)
"""
import os

import numpy as np

import flowjit as tf
import flowjit.distribute as hvd
from flowjit.datasets import load_digits

flags = tf.app.flags
flags.DEFINE_integer("epochs", 10, "passes over the training data")
flags.DEFINE_integer("batch_size", 32, "examples per gradient step on each process")
flags.DEFINE_integer("hidden_nodes", 128, "units of the hidden layer")
flags.DEFINE_float("learning_rate", 0.05, "gradient descent step size of one process "
                   "(scaled by the number of processes, as Horovod advises)")
flags.DEFINE_string("model_dir", "runs/distributed_mnist", "where rank 0 saves the model")
flags.DEFINE_boolean("mnist", False, "train on MNIST (downloaded) instead of the digits")
FLAGS = flags.FLAGS


def load():
    if FLAGS.mnist:
        from flowjit.examples.tutorials.mnist import input_data
        return input_data.read_data_sets(os.path.join(FLAGS.model_dir, "data"), one_hot=True)
    return load_digits(one_hot=True)


def main(_):
    hvd.init()  # first: it also shares out this machine's cores among the processes
    data = load()
    shard = slice(hvd.rank(), None, hvd.size())  # this process's share of the examples
    images, labels = data.train.images[shard], data.train.labels[shard]

    X = tf.placeholder(tf.float32, [None, 784])
    Y = tf.placeholder(tf.float32, [None, 10])
    hidden = tf.layers.dense(X, FLAGS.hidden_nodes, activation=tf.nn.relu)
    logits = tf.layers.dense(hidden, 10)
    cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=Y, logits=logits))
    mean_cost = hvd.allreduce(cost)  # the cost over every process's batch
    global_step = tf.train.get_or_create_global_step()
    optimizer = hvd.DistributedOptimizer(
        tf.train.MomentumOptimizer(FLAGS.learning_rate * hvd.size(), 0.9))
    train_op = optimizer.minimize(cost, global_step=global_step)
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), tf.argmax(Y, 1)),
                                      tf.float32))
    saver = tf.train.Saver()  # (writes on rank 0 only)

    # every process takes the same number of steps: the collectives must pair up
    steps = len(range(0, data.train.num_examples // hvd.size(), FLAGS.batch_size))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(hvd.broadcast_global_variables(0))
        for epoch in range(FLAGS.epochs):
            order = np.random.RandomState(epoch).permutation(len(images))
            costs = []
            for step in range(steps):
                batch = order[step * FLAGS.batch_size:(step + 1) * FLAGS.batch_size]
                value, _ = sess.run([mean_cost, train_op], {X: images[batch],
                                                             Y: labels[batch]})
                costs.append(value)
            if hvd.rank() == 0:
                print("epoch %2d  cost %.4f" % (epoch + 1, np.mean(costs)), flush=True)
        test = sess.run(accuracy, {X: data.test.images, Y: data.test.labels})
        os.makedirs(FLAGS.model_dir, exist_ok=True)
        path = saver.save(sess, os.path.join(FLAGS.model_dir, "model"), global_step=global_step)
    if hvd.rank() == 0:
        print("processes: %d, steps per epoch: %d, global batch: %d"
              % (hvd.size(), steps, hvd.size() * FLAGS.batch_size))
        print("saved %s" % path)
        print("final test accuracy: %.4f" % test)


if __name__ == "__main__":
    tf.app.run()
