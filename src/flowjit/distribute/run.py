"""`flowjitrun -np N command...` (also `python -m flowjit.distribute.run`): starts N copies of
a command as one MPI job, with the MPI launcher that mpi4py uses (the one of the `mpich`
or `openmpi` package from the index, installed next to this Python), else the system's."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import List, Optional

LAUNCHERS = ("mpiexec", "mpirun")


def find_launcher() -> Optional[str]:
    """The MPI launcher next to this Python (the package index's MPI), else on PATH."""
    here = os.path.dirname(sys.executable)
    for name in LAUNCHERS:
        candidate = os.path.join(here, name)
        if os.access(candidate, os.X_OK):
            return candidate
    for name in LAUNCHERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def launcher_command(launcher: str, processes: int, command: List[str]) -> List[str]:
    """The launcher's command line. Open MPI refuses more processes than cores and to run
    as root unless told; MPICH's hydra needs neither."""
    args = [launcher, "-n", str(processes)]
    if _is_open_mpi(launcher):
        args += ["--oversubscribe"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args += ["--allow-run-as-root"]
    return args + command


def _is_open_mpi(launcher: str) -> bool:
    directory = os.path.dirname(os.path.realpath(launcher))
    return os.path.exists(os.path.join(directory, "ompi_info"))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="flowjitrun", description="Run a command as N processes of one MPI job "
        "(flowjit.distribute), e.g. flowjitrun -np 2 python train.py")
    parser.add_argument("-np", "-n", dest="processes", type=int, default=1,
                        help="how many processes (ranks) to start")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="the program and its arguments")
    options = parser.parse_args(argv)
    if not options.command:
        parser.error("no command to run (e.g. flowjitrun -np 2 python train.py)")
    if options.processes < 1:
        parser.error(f"-np must be at least 1, got {options.processes}")
    launcher = find_launcher()
    if launcher is None:
        sys.stderr.write("flowjitrun: no MPI launcher (mpiexec) found; install one with "
                         "`pip install 'flowjit[distributed]'` or the system's MPI\n")
        return 127
    args = launcher_command(launcher, options.processes, options.command)
    sys.stdout.flush()
    os.execv(args[0], args)
    return 0  # (not reached)


if __name__ == "__main__":
    sys.exit(main())
