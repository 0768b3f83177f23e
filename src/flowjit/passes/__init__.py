"""Passes over the IR. Each is a small pure function `run(func) -> (func, changed)` in a
module of its own; `manager.py` orders them, verifies, times and dumps."""
