"""ir_dumps/ is current: regenerating it from examples/mlp.py gives the same files."""
import filecmp
import os
from pathlib import Path

from flowjit import cli

ROOT = Path(__file__).resolve().parents[1]


def test_ir_dumps_are_current(tmp_path, capsys):
    out = tmp_path / "mlp"
    # The same stages as `make ir-dumps` (LLVM IR and PTX depend on the host and LLVM).
    stages = "ir,autodiff,decompose,canonicalize,const-fold,cse,dce,fusion,opt"
    assert cli.main([str(ROOT / "examples" / "mlp.py"), "--out", str(out), "--dot",
                     "--stages", stages]) == 0
    committed = ROOT / "ir_dumps" / "mlp"
    stale = []
    for folder, _, files in os.walk(committed):
        for name in files:
            path = Path(folder) / name
            fresh = out / path.relative_to(committed)
            if not fresh.exists() or not filecmp.cmp(path, fresh, shallow=False):
                stale.append(str(path.relative_to(ROOT)))
    for folder, _, files in os.walk(out):
        for name in files:
            if not (committed / (Path(folder) / name).relative_to(out)).exists():
                stale.append(f"(missing) {name}")
    assert not stale, f"ir_dumps/ is stale, run `make ir-dumps`: {stale}"


def test_ir_dumps_show_folding_and_fusion():
    step = ROOT / "ir_dumps" / "mlp" / "001-loss"
    before = (step / "ir.ir").read_text()
    after = (step / "opt.ir").read_text()
    assert "gradients" in before and "fusion" not in before
    assert after.count('kind="contraction"') >= 6 and "gradients %" not in after
