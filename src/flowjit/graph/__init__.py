"""The user-facing dataflow graph: Graph, Operation, Tensor, shapes, the op table, Session."""
