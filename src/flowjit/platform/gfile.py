"""`tf.gfile`: TF1's file functions, on the local file system. Errors are `flowjit.errors`
classes naming the path (NotFoundError, AlreadyExistsError, FailedPreconditionError)."""
from __future__ import annotations

import glob as _glob
import os
import shutil
from typing import Iterator, List, NamedTuple, Tuple

from flowjit import errors


class GFile:
    """`tf.gfile.GFile(name, mode="r")`: a file; text in "r"/"w"/"a", bytes with "b"."""

    def __init__(self, name: str, mode: str = "r") -> None:
        self.name = os.fspath(name)
        self.mode = mode
        try:
            self._file = open(self.name, mode)
        except FileNotFoundError:
            raise errors.NotFoundError(f"{self.name}; No such file or directory") from None
        except IsADirectoryError:
            raise errors.FailedPreconditionError(f"{self.name}; Is a directory") from None
        except PermissionError:
            raise errors.PermissionDeniedError(f"{self.name}; Permission denied") from None

    def read(self, n: int = -1):
        return self._file.read(n)

    def readline(self):
        return self._file.readline()

    def readlines(self):
        return self._file.readlines()

    def write(self, data) -> None:
        self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def size(self) -> int:
        self._file.flush()
        return os.path.getsize(self.name)

    def close(self) -> None:
        self._file.close()

    def __iter__(self):
        return iter(self._file)

    def __next__(self):
        return next(self._file)

    def __enter__(self) -> "GFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


FastGFile = GFile
Open = GFile


def Exists(filename: str) -> bool:
    return os.path.exists(filename)


def IsDirectory(dirname: str) -> bool:
    return os.path.isdir(dirname)


def MakeDirs(dirname: str) -> None:
    """Creates `dirname` and its parents; fine if it exists as a directory."""
    try:
        os.makedirs(dirname, exist_ok=True)
    except FileExistsError:
        raise errors.FailedPreconditionError(f"{dirname}; exists and is not a directory") \
            from None


def MkDir(dirname: str) -> None:
    try:
        os.mkdir(dirname)
    except FileExistsError:
        raise errors.AlreadyExistsError(f"{dirname}; File exists") from None
    except FileNotFoundError:
        raise errors.NotFoundError(f"{dirname}; its parent directory does not exist") from None


def _must_exist(path: str) -> None:
    if not os.path.lexists(path):
        raise errors.NotFoundError(f"{path}; No such file or directory")


def DeleteRecursively(dirname: str) -> None:
    _must_exist(dirname)
    if os.path.isdir(dirname) and not os.path.islink(dirname):
        shutil.rmtree(dirname)
    else:
        os.remove(dirname)


def Remove(filename: str) -> None:
    _must_exist(filename)
    if os.path.isdir(filename) and not os.path.islink(filename):
        raise errors.FailedPreconditionError(f"{filename}; Is a directory (use "
                                             f"DeleteRecursively)")
    os.remove(filename)


def Glob(filename: str) -> List[str]:
    return sorted(_glob.glob(filename))


def ListDirectory(dirname: str) -> List[str]:
    """The names (not paths) of the entries of `dirname`."""
    if not os.path.isdir(dirname):
        raise errors.NotFoundError(f"Could not find directory {dirname}")
    return sorted(os.listdir(dirname))


def _check_target(oldname: str, newname: str, overwrite: bool) -> None:
    _must_exist(oldname)
    if os.path.exists(newname) and not overwrite:
        raise errors.AlreadyExistsError(f"{newname}; File exists (pass overwrite=True)")


def Rename(oldname: str, newname: str, overwrite: bool = False) -> None:
    _check_target(oldname, newname, overwrite)
    os.replace(oldname, newname)


def Copy(oldpath: str, newpath: str, overwrite: bool = False) -> None:
    _check_target(oldpath, newpath, overwrite)
    shutil.copyfile(oldpath, newpath)


def Walk(top: str, in_order: bool = True) -> Iterator[Tuple[str, List[str], List[str]]]:
    """(directory, subdirectory names, file names) for `top` and every directory below it;
    parents first when `in_order`, else children first. Nothing for a missing `top`."""
    for directory, subdirs, files in os.walk(top, topdown=in_order):
        yield directory, sorted(subdirs), sorted(files)


class FileStatistics(NamedTuple):
    length: int
    mtime_nsec: int
    is_directory: bool


def Stat(filename: str) -> FileStatistics:
    _must_exist(filename)
    stat = os.stat(filename)
    return FileStatistics(stat.st_size, stat.st_mtime_ns, os.path.isdir(filename))
