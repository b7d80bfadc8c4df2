"""Benchmark the Glacier tree hash against plain SHA-256 of the same bytes.

Not a test. A tree hash is a SHA-256 of every 1 MiB leaf plus a few more of their
pairs, so it should run at nearly raw SHA-256 speed. Compared on the same random
bytes, best of N interleaved rounds: hashlib.sha256 fed 1 MiB at a time;
archive.treehash.TreeHasher fed 1 MiB and 8 MiB at a time; tree_hash_file and, as
the engine reads files, hashlib over the file (page cache); and botocore's
calculate_tree_hash (the reference). All tree hashes must agree.

    .venv/bin/python bench/bench_treehash.py --size-mib 256 --rounds 5
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import hashlib
import io
import math
import os
from pathlib import Path
import sys
import tempfile
import time
from typing import Any

# The engine without Home Assistant, as the top-level package `archive`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "custom_components" / "s3_glacier"))

from botocore.utils import calculate_tree_hash
from common import MIB, machine, machine_line, table, write_json


def _chunks(data: bytes, size: int) -> list[memoryview]:
    view = memoryview(data)
    return [view[i : i + size] for i in range(0, len(data), size)]


def run(size_mib: int, rounds: int) -> dict[str, Any]:
    """Time each way of hashing; return the best of each, and whether they agreed."""
    try:
        from archive.treehash import TreeHasher, tree_hash_file  # noqa: PLC0415
    except ImportError as err:
        return {
            "benchmark": "treehash",
            "skipped": f"archive/treehash.py is not there yet ({err}); nothing measured",
        }
    size = size_mib * MIB
    block = os.urandom(MIB)
    data = b"".join(i.to_bytes(8, "little") + block[8:] for i in range(size_mib))
    one_mib, eight_mib = _chunks(data, MIB), _chunks(data, 8 * MIB)

    def sha256() -> str:
        hasher = hashlib.sha256()
        for chunk in one_mib:
            hasher.update(chunk)
        return hasher.hexdigest()

    def tree(chunks: list[memoryview]) -> Callable[[], str]:
        def digest() -> str:
            hasher = TreeHasher()
            for chunk in chunks:
                hasher.update(chunk)
            return hasher.hexdigest()

        return digest

    with tempfile.TemporaryDirectory(prefix="bench_treehash_") as work:
        path = Path(work) / "data.bin"
        path.write_bytes(data)

        def sha256_file() -> str:
            hasher = hashlib.sha256()
            with path.open("rb") as handle:
                while chunk := handle.read(MIB):
                    hasher.update(chunk)
            return hasher.hexdigest()

        ways: dict[str, Callable[[], str]] = {
            "hashlib.sha256 (1 MiB updates)": sha256,
            "TreeHasher (1 MiB updates)": tree(one_mib),
            "TreeHasher (8 MiB updates)": tree(eight_mib),
            "sha256 of the file": sha256_file,
            "tree_hash_file": lambda: str(tree_hash_file(path)),
            "botocore calculate_tree_hash": lambda: calculate_tree_hash(io.BytesIO(data)),
        }
        best = dict.fromkeys(ways, math.inf)
        digests: dict[str, set[str]] = {name: set() for name in ways}
        for number in range(rounds):
            names = list(ways)
            names = names[number % len(names) :] + names[: number % len(names)]
            for name in names:
                started = time.perf_counter()
                digests[name].add(ways[name]())
                best[name] = min(best[name], time.perf_counter() - started)

    tree_ways = ("TreeHasher (1 MiB updates)", "TreeHasher (8 MiB updates)", "tree_hash_file")
    tree_ways += ("botocore calculate_tree_hash",)
    tree_digests = {d for name in tree_ways for d in digests[name]}
    raw = best["hashlib.sha256 (1 MiB updates)"]
    raw_file = best["sha256 of the file"]
    rows = [
        {
            "way": name,
            "best_s": seconds,
            "mib_per_s": size_mib / seconds,
            # Relative to raw SHA-256 of the same source (memory or file).
            "vs_sha256": (raw_file if name == "tree_hash_file" else raw) / seconds,
        }
        for name, seconds in best.items()
    ]
    return {
        "benchmark": "treehash",
        "size_mib": size_mib,
        "rounds": rounds,
        "tree_hashes_agree": len(tree_digests) == 1,
        "results": rows,
        "size_bytes": size,
    }


def report(result: dict[str, Any]) -> str:
    """The table."""
    if "skipped" in result:
        return f"Tree hash: skipped: {result['skipped']}"
    title = (
        f"Tree hash of {result['size_mib']} MiB, best of {result['rounds']}"
        f" (tree hashes agree: {'yes' if result['tree_hashes_agree'] else 'NO'})"
    )
    return f"{title}\n" + table(
        ["way", "MiB/s", "best s", "speed ÷ SHA-256"],
        [
            [r["way"], f"{r['mib_per_s']:.0f}", f"{r['best_s']:.3f}", f"{r['vs_sha256']:.2f}"]
            for r in result["results"]
        ],
    )


def main() -> None:
    """Run and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    info = machine()
    result = run(args.size_mib, args.rounds) | {"machine": info}
    print(machine_line(info))
    print(report(result))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
