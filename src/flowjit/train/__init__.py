"""`tf.train`: optimizers, the global step, learning-rate schedules, graph files."""
from flowjit.graph.serialize import load_graph, write_graph  # noqa: F401
from flowjit.train.learning_rate import (create_global_step, exponential_decay,  # noqa: F401
                                         get_global_step, get_or_create_global_step)
from flowjit.train.optimizer import (AdadeltaOptimizer, AdagradOptimizer,  # noqa: F401
                                     AdamOptimizer, GradientDescentOptimizer,
                                     MomentumOptimizer, Optimizer, RMSPropOptimizer)
