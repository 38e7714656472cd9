"""Every file genae writes goes through here: written whole to a new temporary file beside its
destination (created exclusively, so never through a link), flushed to disk, then renamed over the
destination. A reader sees the old file or the new one, never half of one; a symbolic link at the
destination is replaced, not followed; a failed or interrupted write leaves no temporary behind.

    write_json(run / "eval.json", result)
    with replacing(path) as tmp:          # for libraries that write to a file name themselves
        figure.savefig(tmp)
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from genae.errors import UserError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A fresh temporary path beside `path` (same suffix, so libraries pick the same format); when the
    block ends without an error it is synced and renamed to `path`, otherwise removed."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.fchmod(fd, 0o666 & ~_UMASK)   # mkstemp's 0600, widened to what an ordinary new file gets
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, value) -> Path:
    return write_text(path, json.dumps(value, indent=2) + "\n")


def read_json(path: str | os.PathLike, what: str = "JSON"):
    """The parsed content of a JSON file genae wrote, or a UserError naming it when it is damaged."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid {what} ({err}); restore it, or make it again") from err


def append_line(path: str | os.PathLike, line: str) -> Path:
    """The file with one more line, rewritten whole (an append would write through a link)."""
    path = Path(path)
    old = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
    return write_bytes(path, old + line.rstrip("\n").encode("utf-8") + b"\n")
