"""Tests for archive/treehash.py: always equal to botocore's calculate_tree_hash."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
import random

from botocore.utils import calculate_tree_hash
import pytest

from custom_components.s3_glacier.archive.treehash import (
    LEAF_SIZE,
    TreeHasher,
    combine,
    tree_hash_bytes,
    tree_hash_file,
)

MIB = 1024 * 1024
# Enough random bytes for every size below; slices of it are the inputs.
DATA = random.Random(20260501).randbytes(17 * MIB + 3)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Override the project's autouse fixture: these tests need no Home Assistant."""


def botocore_tree_hash(data: bytes) -> str:
    return calculate_tree_hash(io.BytesIO(data))


def hash_in_chunks(data: bytes, sizes: list[int]) -> str:
    """Feed ``data`` to a TreeHasher in chunks of the given sizes (cycled)."""
    hasher = TreeHasher()
    offset = 0
    index = 0
    while offset < len(data):
        step = sizes[index % len(sizes)]
        hasher.update(data[offset : offset + step])
        offset += step
        index += 1
    assert hasher.size == len(data)
    return hasher.hexdigest()


SIZES = [
    0,
    1,
    2,
    1000,
    MIB - 1,
    MIB,
    MIB + 1,
    2 * MIB,
    3 * MIB,
    3 * MIB + 5,
    4 * MIB,
    5 * MIB,
    7 * MIB - 1,
    8 * MIB,
    9 * MIB + 1,
    16 * MIB,
    17 * MIB + 3,
]


def test_empty_is_sha256_of_nothing() -> None:
    empty = hashlib.sha256(b"").hexdigest()
    assert botocore_tree_hash(b"") == empty
    assert TreeHasher().hexdigest() == empty
    assert combine([]).hex() == empty
    hasher = TreeHasher()
    hasher.update(b"")
    assert hasher.hexdigest() == empty


@pytest.mark.parametrize("size", SIZES)
def test_equals_botocore(size: int) -> None:
    data = DATA[:size]
    expected = botocore_tree_hash(data)
    assert tree_hash_bytes(data) == expected
    assert TreeHasher(data).digest() == bytes.fromhex(expected)
    assert hash_in_chunks(data, [1, 4095, MIB, MIB + 7, 3 * MIB]) == expected


def test_equals_botocore_random_sizes_and_chunks() -> None:
    """A seeded property test (hypothesis is not in the venv): 200 sizes and chunkings."""
    rng = random.Random(42)
    for _ in range(200):
        size = rng.choice(
            [rng.randrange(0, 2 * MIB), rng.randrange(0, 9 * MIB), rng.randrange(1, 10) * MIB]
        )
        data = DATA[:size]
        chunks = [rng.choice([1, 17, 4096, 65536, MIB - 1, MIB, MIB + 1, 2 * MIB + 3])]
        chunks += [rng.randrange(1, 3 * MIB) for _ in range(3)]
        assert hash_in_chunks(data, chunks) == botocore_tree_hash(data), (size, chunks)


def test_stack_equals_level_by_level_for_any_leaf_count() -> None:
    """The binary-counter stack gives botocore's pairing for 1 to 300 leaves."""
    for count in range(1, 301):
        leaves = [hashlib.sha256(count.to_bytes(4) + i.to_bytes(4)).digest() for i in range(count)]
        # botocore's loop, restated on leaf digests.
        level = list(leaves)
        while len(level) > 1:
            nxt = [
                hashlib.sha256(level[i] + level[i + 1]).digest()
                for i in range(0, len(level) - 1, 2)
            ]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        assert combine(leaves) == level[0], count


def test_digest_does_not_change_state() -> None:
    data = DATA[: 5 * MIB + 9]
    hasher = TreeHasher()
    hasher.update(data[: 2 * MIB + 1])
    assert hasher.hexdigest() == botocore_tree_hash(data[: 2 * MIB + 1])
    hasher.update(data[2 * MIB + 1 :])
    assert hasher.hexdigest() == botocore_tree_hash(data)
    assert hasher.hexdigest() == hasher.hexdigest()


def test_accepts_bytearray_and_memoryview() -> None:
    data = DATA[: 2 * MIB + 5]
    hasher = TreeHasher()
    hasher.update(bytearray(data[:10]))
    hasher.update(memoryview(data)[10:])
    assert hasher.hexdigest() == botocore_tree_hash(data)


def test_memory_is_logarithmic() -> None:
    """Pending digests stay O(log n): 300 leaves leave at most 9 on the stack."""
    hasher = TreeHasher()
    leaf = b"\0" * LEAF_SIZE
    most = 0
    for _ in range(300):
        hasher.update(leaf)
        most = max(most, len(hasher._stack))
    assert most <= 9
    assert len(hasher._stack) == bin(300).count("1")
    assert hasher.digest() == combine([hashlib.sha256(leaf).digest()] * 300)


@pytest.mark.parametrize("part_mib", [1, 2, 4])
@pytest.mark.parametrize("size", [MIB, 4 * MIB, 5 * MIB + 1, 9 * MIB + 1, 16 * MIB, 17 * MIB + 3])
def test_combine_part_tree_hashes(part_mib: int, size: int) -> None:
    """Tree hashes of power-of-two-MiB parts (last one short) join into the whole's."""
    part = part_mib * MIB
    data = DATA[:size]
    parts = [bytes.fromhex(botocore_tree_hash(data[i : i + part])) for i in range(0, size, part)]
    assert combine(parts).hex() == botocore_tree_hash(data)


def test_tree_hash_file(tmp_path: Path) -> None:
    for size in (0, 1, 3 * MIB + 5, 9 * MIB + 1):
        path = tmp_path / f"f{size}"
        path.write_bytes(DATA[:size])
        assert tree_hash_file(path) == botocore_tree_hash(DATA[:size])


def test_large_random_input() -> None:
    data = os.urandom(33 * MIB + 123)
    assert hash_in_chunks(data, [8 * MIB - 1]) == botocore_tree_hash(data)
