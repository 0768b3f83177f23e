# Seed: 'Hello World!' talk, 1_example.py (node1 + node2 with constants).
import flowjit as tf

node1 = tf.constant(3.0, dtype=tf.float32, name='node1')
node2 = tf.constant(4.0, dtype=tf.float32, name='node2')
node3 = tf.add(node1, node2)

print(node1, node3)

sess = tf.Session()
result = sess.run([node3])
print('Result:', result)
