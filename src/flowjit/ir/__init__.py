"""flowjit's SSA IR: typed values, instructions with attributes and source locations,
functions with explicit inputs (feeds, variables, random counters) and outputs (fetches and
new variable values). See core.py for the data structures, printer.py / parser.py for the
textual form, verifier.py for the invariants."""
from flowjit.ir.core import (Func, Instr, Location, Param, Result, TensorType,  # noqa: F401
                             Value)
