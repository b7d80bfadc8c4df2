"""A file on a disk that fills up: the one fake full disk the tests share."""

from __future__ import annotations

import errno
import io
import os
from typing import Any


class FullDiskFile(io.FileIO):
    """A raw file with ``room`` bytes free: a write that does not fit stores what
    fits, then fails with ENOSPC, as write(2) on a full disk does."""

    def __init__(self, fd: int, room: int, *, closefd: bool = True) -> None:
        super().__init__(fd, "wb", closefd=closefd)
        self.room = room

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        written = super().write(chunk[: max(self.room, 0)])
        self.room -= written
        if written < len(chunk):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return written
