# Seed: Marek Rei, Lecture 5, "Training a Network" (W = [0.2, 0.7], target 20).
import flowjit as tf

x = tf.placeholder(tf.float32, [2], name="x")
target = tf.placeholder(tf.float32, name="target")
learning_rate = tf.placeholder(
    tf.float32,
    name="learning_rate")
W = tf.get_variable("W", initializer=[0.2, 0.7])
y = tf.reduce_sum(x * W)
loss = tf.pow(target - y, 2.0)
optimizer = tf.train.GradientDescentOptimizer(
    learning_rate=learning_rate)
train_op = optimizer.minimize(loss)

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    for epoch in range(10):
        result, _ = sess.run(
            [y, train_op],
            feed_dict={x: [1.0, 1.0],
                       target: 20.0,
                       learning_rate: 0.1})
        print("Result: ", result)
