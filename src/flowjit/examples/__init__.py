"""`flowjit.examples`: what `tensorflow.examples` held for TF1 tutorials (MNIST's input_data)."""
