"""What sizes a file is read in: how a test sees that an upload streams rather than slurps.

Bodies are sent with ``os.pread`` (``transfer.read_exactly``), which this does not see;
what it records are the ``read()`` calls that hash a file before its upload.
"""

from __future__ import annotations

from collections.abc import Callable
import io
from pathlib import Path
from typing import Any

import pytest


class _RecordingReader(io.BufferedReader):
    def __init__(
        self, raw: io.FileIO, sizes: list[int | None], before_read: Callable[[int], None]
    ) -> None:
        super().__init__(raw)
        self._sizes = sizes
        self._before_read = before_read

    def read(self, size: int | None = -1, /) -> bytes:
        self._before_read(len(self._sizes))
        self._sizes.append(size)
        return super().read(size)


def record_reads(
    monkeypatch: pytest.MonkeyPatch,
    path: Path,
    before_read: Callable[[int], None] = lambda reads_so_far: None,
) -> list[int | None]:
    """The size of each ``read()`` on ``path`` opened with ``Path.open("rb")`` from now on.

    ``before_read(reads_so_far)`` runs before each (a test may change the file there).
    """
    sizes: list[int | None] = []
    real_open = Path.open

    def opening(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if self == path and mode == "rb":
            return _RecordingReader(io.FileIO(self, "rb"), sizes, before_read)
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", opening)
    return sizes
