# Seed: Marek Rei, "Data Science: Principles and Practice", Lecture 5 ("Result: 9.0").
import flowjit as tf

a = tf.placeholder(tf.float32)
b = tf.placeholder(tf.float32)
y = a + b

with tf.Session() as sess:
    result = sess.run(y, feed_dict={a: 4, b: 5})
    print("Result:", result)
