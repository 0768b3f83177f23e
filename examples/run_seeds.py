"""Runs the seed programs (the talks' TF1 code with only the import changed) and checks that
each prints what its slide prints. Programs that need a part of flowjit not built yet are
listed as skipped, with the reason; they run automatically once that part lands."""
from __future__ import annotations

import difflib
import os
import subprocess
import sys
from pathlib import Path

SEEDS = Path(__file__).resolve().parent / "seeds"

# (program, flowjit attribute it needs). A program without a .expected file checks its own
# result and reports it with its exit status.
PROGRAMS = [
    ("a_plus_b.py", None),
    ("constant_add.py", None),
    ("relu_graph.py", None),
    ("relu_gradients.py", "gradients"),
    ("training_table.py", "gradients"),
    ("mlp_backprop.py", "gradients"),
]


def run_program(name: str) -> str:
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run([sys.executable, str(SEEDS / name)], capture_output=True, text=True,
                          env=env, cwd=SEEDS, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def main() -> int:
    import flowjit
    failures = 0
    for name, needs in PROGRAMS:
        if needs is not None and not hasattr(flowjit, needs):
            print(f"-- {name}: skipped (needs tf.{needs}, not built yet)")
            continue
        expected_file = SEEDS / name.replace(".py", ".expected")
        try:
            output = run_program(name)
        except RuntimeError as e:
            print(f"!! {e}")
            failures += 1
            continue
        expected = expected_file.read_text() if expected_file.exists() else output
        status = "ok, matches the slide" if expected_file.exists() else "ok, checked itself"
        if output != expected:
            status = "MISMATCH with the slide"
        print(f"== {name}: {status}")
        print("".join("   " + line for line in output.splitlines(True)))
        if output != expected:
            failures += 1
            sys.stdout.writelines(difflib.unified_diff(expected.splitlines(True),
                                                       output.splitlines(True),
                                                       "slide", "flowjit"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
