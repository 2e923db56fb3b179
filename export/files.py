"""Output paths: never overwrite silently, write atomically, and keep JSON metadata beside files."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable(path, overwrite, what):
    """Refuses an existing output unless `overwrite`; with `overwrite`, only replaces things
    that look like what we write (a SavedModel folder, a .tflite/.json file), never a folder of
    other files."""
    path = Path(path)
    if not path.exists():
        return
    if path.is_dir() and not any(path.iterdir()):
        return  # an empty folder: nothing to overwrite
    if not overwrite:
        raise FileExistsError(
            f"{what} path {str(path)!r} already exists. Choose another path, or pass "
            "overwrite=True (CLI: --force) to replace it."
        )
    if path.is_dir() and not (path / "saved_model.pb").exists():
        raise FileExistsError(
            f"{what} path {str(path)!r} is a folder that is not a SavedModel; refusing to "
            "delete it even with overwrite=True. Choose a new or empty folder."
        )


@contextmanager
def atomic_dir(path):
    """Yields a temporary folder beside `path`; on success it replaces `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        # mkdtemp makes the folder private; give the result the usual permissions.
        for p in [tmp, *tmp.rglob("*")]:
            os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~_umask())
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_bytes_atomic(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def json_path(tflite_path):
    """The metadata file that goes beside a .tflite file."""
    return Path(tflite_path).with_suffix(".json")


def write_json(path, obj):
    write_bytes_atomic(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)
