"""What `import flowjit` loads: the graph API, the ops and the compiler, and nothing that only
some programs use (LLVM, the CUDA backend, MPI, checkpoints, graph files, event files, the
timeline), which is imported on first use and then behaves as if it had always been there."""
import os
import subprocess
import sys

import flowjit as tf

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")

LOADED_ON_FIRST_USE = ("llvmlite", "flowjit.codegen", "flowjit.runtime.cuda",
                       "flowjit.runtime.collectives", "flowjit.runtime.mpi",
                       "flowjit.train.saver", "flowjit.train.checkpoint_management",
                       "flowjit.graph.serialize", "flowjit.summary.writer",
                       "flowjit.client.timeline", "concurrent.futures", "json")


def test_import_flowjit_leaves_what_few_programs_use_unloaded():
    code = ("import sys, flowjit\n"
            f"print(sorted(m for m in sys.modules if m.startswith({LOADED_ON_FIRST_USE!r})))")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=SRC),
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_attributes_imported_on_first_use_are_the_modules_own():
    from flowjit.client import timeline
    from flowjit.graph import serialize
    from flowjit.python.client import timeline as tf_timeline
    from flowjit.summary import writer
    from flowjit.train import checkpoint_management, import_meta_graph, meta_graph, saver
    assert tf.train.Saver is saver.Saver and "Saver" in dir(tf.train)
    assert tf.train.latest_checkpoint is checkpoint_management.latest_checkpoint
    assert tf.train.write_graph is serialize.write_graph
    assert import_meta_graph is meta_graph.import_meta_graph
    assert tf.train.SummaryWriter is tf.summary.FileWriter is writer.FileWriter
    assert tf_timeline is tf.python.client.timeline is timeline
    for module, name in ((tf.train, "Savr"), (tf.summary, "FileWritter")):
        try:
            getattr(module, name)
        except AttributeError as e:
            assert name in str(e)
        else:
            raise AssertionError(f"{module.__name__}.{name} exists")


def test_the_cuda_backend_registers_itself_when_first_asked_for():
    from flowjit.runtime.backends import available_backends, get_backend
    assert "cuda" in available_backends()
    assert get_backend("cuda").name == "cuda"
