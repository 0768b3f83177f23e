from flowjit.client import timeline  # noqa: F401
