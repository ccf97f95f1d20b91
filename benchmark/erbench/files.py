"""Reading the files a submission names, defensively (docs/submissions.md).

Paths stay inside the submission root (symlinks resolved); only regular files are opened, and only
once ``stat`` has shown them to be within their size limit; nothing is hashed before that.
"""

from __future__ import annotations

import hashlib

import os
import stat
from pathlib import Path

from erbench.errors import ErbenchError, shorten

SUBMISSIONS_DIR = "submissions"
YAML_MAX_BYTES = 64 << 10
WEIGHTS_MAX_BYTES = 1 << 30


def _size(n: int) -> str:
    return f"{n >> 30} GiB" if n >= 1 << 30 else f"{n >> 10} KiB"


def submissions_tree(spec_path: str | Path) -> Path | None:
    """The nearest ``submissions/`` directory enclosing the YAML (absolute, as named), if any."""
    parent = Path(os.path.abspath(spec_path)).parent
    return next((d for d in (parent, *parent.parents) if d.name == SUBMISSIONS_DIR), None)


def submission_root(spec_path: str | Path) -> Path:
    """What a submission's paths may not leave (resolved): its ``submissions/`` tree, else the YAML's directory."""
    return (submissions_tree(spec_path) or Path(os.path.abspath(spec_path)).parent).resolve()


def inside(root: Path, base: Path, name: str, *, file: str | Path, field: str | None) -> Path:
    """``base / name`` resolved, refused if ``name`` is absolute or the result leaves ``root``."""
    if Path(name).is_absolute():
        raise ErbenchError(f"absolute path '{shorten(name)}' refused: give a path relative to the YAML file",
                           file=file, field=field)
    path = (base / name).resolve()
    if not path.is_relative_to(root):
        raise ErbenchError(f"'{shorten(name)}' leaves the submission root {root} (symlinks resolved)",
                           file=file, field=field)
    return path


def _kind(mode: int) -> str:
    kinds = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket",
             stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device"}
    return next((name for test, name in kinds.items() if test(mode)), "not a regular file")


def _check(st: os.stat_result, limit: int, file: str | Path, field: str | None) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise ErbenchError(f"is {_kind(st.st_mode)}, not a regular file", file=file, field=field)
    if st.st_size > limit:
        raise ErbenchError(f"is {st.st_size:,} bytes, over the {_size(limit)} limit", file=file, field=field)


def read_regular(path: Path, limit: int, *, file: str | Path, field: str | None) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes (stat before open; no blocking open)."""
    try:
        _check(os.stat(path), limit, file, field)
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            _check(os.fstat(f.fileno()), limit, file, field)  # what was opened: it may have been replaced
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise ErbenchError("file not found", file=file, field=field) from None
    except OSError as exc:
        raise ErbenchError(f"cannot read: {exc.strerror}", file=file, field=field) from None
    if len(data) > limit:
        raise ErbenchError(f"grew over the {_size(limit)} limit while read", file=file, field=field)
    return data


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
