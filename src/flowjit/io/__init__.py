"""Files around the model: TensorFlow's checkpoint format (SSTable + tensor bundle), the
protos flowjit reads and writes, and `tf.gfile`."""
