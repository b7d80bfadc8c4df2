"""Benchmark the catalog: what a coordinator refresh costs at 10k to 1M objects.

Not a test. Fills a catalog in a temporary directory with N synthetic objects, then
times one coordinator refresh, archive.summary.summarize (best of 5), and
one reconcile of a full listing in which 1 % of the objects changed size.

    .venv/bin/python bench/bench_catalog.py --rows 10000 1000000 --json bench/results/catalog.json
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
import json
import math
from pathlib import Path
import platform
import random
import sqlite3
import sys
import tempfile
import time
from typing import Any

# The engine is benchmarked without Home Assistant: import it as the top-level
# package `archive` rather than through custom_components.s3_glacier, whose
# __init__ imports homeassistant.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "custom_components" / "s3_glacier"))

from archive.catalog import Catalog
from archive.models import (
    GIB,
    ArchivedObject,
    PendingRestore,
    RestoreTier,
    StorageClass,
)
from archive.pricing import price_table
from archive.summary import summarize

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
HISTORY_DAYS = 3 * 365
BATCH = 50_000
REPEATS = 5
SEED = 1234

# Roughly what a home archive defaults to: mostly GLACIER_IR, some deep archive.
CLASS_WEIGHTS = {
    StorageClass.GLACIER_IR: 50,
    StorageClass.DEEP_ARCHIVE: 20,
    StorageClass.GLACIER: 10,
    StorageClass.STANDARD: 8,
    StorageClass.STANDARD_IA: 5,
    StorageClass.INTELLIGENT_TIERING: 4,
    StorageClass.ONEZONE_IA: 2,
    StorageClass.VAULT: 1,
}


def synthetic(rows: int, changed_every: int = 0) -> Iterator[ArchivedObject]:
    """Yield the same N objects for the same arguments; optionally resize some."""
    rng = random.Random(SEED)
    classes = list(CLASS_WEIGHTS)
    weights = list(CLASS_WEIGHTS.values())
    for i in range(rows):
        size = min(int(rng.lognormvariate(math.log(2_000_000), 2)), 5 * GIB)
        if changed_every and i % changed_every == 0:
            size += 1
        yield ArchivedObject(
            key=f"ha/archive/{i:09d}.tar",
            size=size,
            storage_class=rng.choices(classes, weights)[0],
            last_modified=NOW - timedelta(seconds=rng.randrange(HISTORY_DAYS * 86_400)),
            etag=f"{i:032x}",
            sha256=f"{i:064x}",
        )


def batches(objects: Iterator[ArchivedObject], size: int) -> Iterator[list[ArchivedObject]]:
    """Split an iterator into lists of at most ``size``."""
    while batch := [obj for _, obj in zip(range(size), objects, strict=False)]:
        yield batch


def best_of(repeats: int, call: Callable[[], object]) -> float:
    """Return the best wall time of ``call`` in seconds."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def bench(rows: int, directory: Path) -> dict[str, Any]:
    """Fill a catalog with ``rows`` objects and time the refresh operations."""
    path = directory / f"catalog-{rows}.db"
    with Catalog(path) as catalog:
        start = time.perf_counter()
        for batch in batches(synthetic(rows), BATCH):
            catalog.record_many(batch)
        fill = time.perf_counter() - start
        for n in range(3):
            catalog.add_pending_restore(
                PendingRestore(
                    key=f"ha/archive/{n:09d}.tar",
                    tier=RestoreTier.BULK,
                    days=1,
                    requested_at=NOW,
                    ready_by=NOW + timedelta(hours=12),
                )
            )

        prices = price_table("eu-central-1")

        def refresh() -> None:
            # Exactly the coordinator's executor work for one refresh.
            summarize(catalog, prices, NOW)

        result: dict[str, Any] = {
            "rows": rows,
            "fill_s": fill,
            "file_mb": sum(p.stat().st_size for p in directory.glob(f"{path.name}*")) / 1e6,
            "usage_ms": best_of(REPEATS, lambda: catalog.usage(NOW)) * 1e3,
            "last_archived_ms": best_of(REPEATS, catalog.last_archived) * 1e3,
            "count_ms": best_of(REPEATS, catalog.count) * 1e3,
            "pending_restores_ms": best_of(REPEATS, catalog.pending_restores) * 1e3,
            "refresh_ms": best_of(REPEATS, refresh) * 1e3,
        }
        start = time.perf_counter()
        reconciled = catalog.reconcile(synthetic(rows, changed_every=100))
        result["reconcile_s"] = time.perf_counter() - start
        result["reconcile_changed"] = reconciled.changed
        assert catalog.count() == rows
    return result


COLUMNS = [
    ("rows", "rows", "{:>9,}"),
    ("fill_s", "fill s", "{:>8.1f}"),
    ("file_mb", "file MB", "{:>8.1f}"),
    ("usage_ms", "usage ms", "{:>9.3f}"),
    ("last_archived_ms", "last ms", "{:>8.3f}"),
    ("count_ms", "count ms", "{:>9.3f}"),
    ("pending_restores_ms", "pending ms", "{:>10.3f}"),
    ("refresh_ms", "refresh ms", "{:>10.3f}"),
    ("reconcile_s", "reconcile s", "{:>11.2f}"),
]


def run(rows: list[int]) -> dict[str, Any]:
    """Benchmark each row count in a temporary directory; return the report."""
    with tempfile.TemporaryDirectory(prefix="bench_catalog_") as directory:
        results = [bench(count, Path(directory)) for count in rows]
    return {
        "benchmark": "catalog refresh",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "machine": platform.machine(),
        "repeats": REPEATS,
        "results": results,
    }


def report(result: dict[str, Any]) -> str:
    """The table."""
    lines = ["  ".join(f"{title:>{len(fmt.format(0))}}" for _, title, fmt in COLUMNS)]
    lines += [
        "  ".join(fmt.format(row[key]) for key, _, fmt in COLUMNS) for row in result["results"]
    ]
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark for each row count and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    result = run(args.rows)
    print(report(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
