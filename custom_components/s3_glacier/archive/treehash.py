"""Streaming SHA-256 tree hash, as Amazon Glacier vaults compute it.

The data is cut into 1 MiB leaves; each leaf is hashed with SHA-256, then the
digests are hashed in concatenated pairs, level by level, an odd digest at the end of
a level being carried up unchanged, until one digest remains. Empty input hashes to
SHA-256 of no bytes (as ``botocore.utils.calculate_tree_hash`` answers).

That level-by-level tree for ``n`` leaves is the same as: the complete tree of the
first ``2^k`` leaves (``2^k`` the largest power of two below ``n``) paired with the
tree of the rest. ``TreeHasher`` therefore keeps only a stack of finished complete
subtrees, merging equal sizes like the carries of a binary counter, and folds the
stack from the right at the end: memory is O(log n) digests, whatever the size.

The same property lets ``combine`` join the tree hashes of consecutive pieces whose
sizes are all the same power-of-two number of MiB (the last one may be shorter), such
as the parts of a Glacier multipart upload, into the tree hash of the whole.
"""

from __future__ import annotations

from collections.abc import Iterable
import hashlib
from pathlib import Path

LEAF_SIZE = 1024 * 1024

# How much of a file ``tree_hash_file`` reads at a time.
_READ_SIZE = 8 * LEAF_SIZE


def _pair(left: bytes, right: bytes) -> bytes:
    """Hash of two concatenated digests."""
    return hashlib.sha256(left + right).digest()


def combine(digests: Iterable[bytes]) -> bytes:
    """Join consecutive digests into one, level by level, an odd one carried up.

    ``digests`` are leaf digests (SHA-256 of each 1 MiB leaf), or the tree hashes
    (raw 32 bytes, not hex) of consecutive pieces that all cover the same
    power-of-two number of MiB, the last piece possibly shorter. No digests at all
    give the tree hash of empty input.
    """
    level = list(digests)
    if not level:
        return hashlib.sha256(b"").digest()
    while len(level) > 1:
        paired = [_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


class TreeHasher:
    """Incremental tree hash: ``update`` with bytes of any chunking, then ``digest``.

    Not thread-safe (like ``hashlib`` objects); use one per stream. ``digest`` and
    ``hexdigest`` do not change the state, so hashing may continue after them.
    """

    __slots__ = ("_leaf", "_leaf_fill", "_size", "_stack")

    def __init__(self, data: bytes | bytearray | memoryview = b"") -> None:
        """Start a tree hash, optionally with a first chunk of data."""
        # Finished complete subtrees, oldest (largest) first: (height, digest). Heights
        # strictly decrease from the bottom of the stack to its top.
        self._stack: list[tuple[int, bytes]] = []
        self._leaf = hashlib.sha256()
        self._leaf_fill = 0
        self._size = 0
        if data:
            self.update(data)

    @property
    def size(self) -> int:
        """Number of bytes hashed so far."""
        return self._size

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Hash more bytes; they are not copied (only sliced through a memoryview)."""
        view = memoryview(data).cast("B")
        length = len(view)
        offset = 0
        while offset < length:
            take = min(LEAF_SIZE - self._leaf_fill, length - offset)
            if take == LEAF_SIZE:
                # A whole leaf in one go: no need to go through the running hasher.
                self._push(hashlib.sha256(view[offset : offset + take]).digest())
            else:
                self._leaf.update(view[offset : offset + take])
                self._leaf_fill += take
                if self._leaf_fill == LEAF_SIZE:
                    self._push(self._leaf.digest())
                    self._leaf = hashlib.sha256()
                    self._leaf_fill = 0
            offset += take
        self._size += length

    def _push(self, digest: bytes) -> None:
        """Add a finished leaf, merging equal-height subtrees like binary carries."""
        height = 0
        stack = self._stack
        while stack and stack[-1][0] == height:
            _, left = stack.pop()
            digest = _pair(left, digest)
            height += 1
        stack.append((height, digest))

    def digest(self) -> bytes:
        """The tree hash of everything hashed so far (32 raw bytes)."""
        if self._size == 0:
            return hashlib.sha256(b"").digest()
        pending = [digest for _, digest in self._stack]
        if self._leaf_fill:
            pending.append(self._leaf.digest())
        result = pending.pop()
        while pending:
            result = _pair(pending.pop(), result)
        return result

    def hexdigest(self) -> str:
        """The tree hash of everything hashed so far, as lowercase hex."""
        return self.digest().hex()


def tree_hash_bytes(data: bytes | bytearray | memoryview) -> str:
    """Tree hash (hex) of a buffer."""
    return TreeHasher(data).hexdigest()


def tree_hash_file(path: Path) -> str:
    """Tree hash (hex) of the file at ``path``, read once in bounded chunks."""
    hasher = TreeHasher()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_READ_SIZE):
            hasher.update(chunk)
    return hasher.hexdigest()
