"""Code generation: optimized IR -> LLVM IR -> native code (CPU) or PTX (GPU, later).

  target.py   what differs between targets (triple, features, math, compilation)
  scalar.py   one LLVM emitter per elementwise IR op, on scalars of any dtype
  kernels.py  loop nests for an instruction or a fusion: elementwise, reduce, matmul
"""
