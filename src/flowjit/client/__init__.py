"""`flowjit.client`: run tracing (`RunOptions(trace_level=FULL_TRACE)`) and its timeline."""
