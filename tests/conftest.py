import pytest

import flowjit as tf


@pytest.fixture(autouse=True)
def fresh_default_graph():
    """Every test starts with an empty default graph."""
    tf.reset_default_graph()
    yield


@pytest.fixture(autouse=True, scope="session")
def verify_ir_after_every_pass():
    """In tests the pass manager always verifies the IR after each pass."""
    from flowjit.config import config
    saved = config.verify_ir
    config.verify_ir = True
    yield
    config.verify_ir = saved
