"""Benchmark a full reconcile of N objects against the local S3 server.

Not a test. Stores N small objects under a prefix (a thread pool; not timed as part of
the reconcile), then times what the coordinator's reconcile does: S3Target.iterate
(list_objects_v2, 1,000 keys a page) into Catalog.reconcile, into an empty catalog
(every object added) and again (nothing changed); and the listing alone.

    .venv/bin/python bench/bench_reconcile.py --objects 10000
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
import math
from pathlib import Path
import sys
import tempfile
import time
from typing import Any

# The engine without Home Assistant, as the top-level package `archive`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "custom_components" / "s3_glacier"))

from archive.catalog import Catalog
from archive.client import make_client
from archive.models import Credentials
from archive.s3 import S3Target
from common import BUCKET, Endpoint, local_s3, machine, machine_line, table, write_json

PREFIX = "reconcile/"
UPLOAD_THREADS = 32


def _fill(endpoint: Endpoint, count: int) -> float:
    """Store ``count`` objects of 100 bytes; return the seconds it took."""
    s3 = endpoint.client(
        max_pool_connections=UPLOAD_THREADS, retries={"max_attempts": 5, "mode": "standard"}
    )
    started = time.perf_counter()
    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        list(
            pool.map(
                lambda i: s3.put_object(
                    Bucket=BUCKET, Key=f"{PREFIX}{i // 1000:03d}/{i:07d}.bin", Body=b"x" * 100
                ),
                range(count),
            )
        )
    return time.perf_counter() - started


def _empty(endpoint: Endpoint) -> None:
    s3 = endpoint.client()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})


def run(count: int, rounds: int) -> dict[str, Any]:
    """Fill, then time the listing and both reconciles (best of ``rounds``)."""
    with local_s3() as endpoint, tempfile.TemporaryDirectory(prefix="bench_reconcile_") as work:
        _empty(endpoint)
        fill_s = _fill(endpoint, count)
        credentials = Credentials(
            access_key_id=endpoint.access_key_id,
            secret_access_key=endpoint.secret_access_key,
            region=endpoint.region,
            endpoint_url=endpoint.url,
        )
        target = S3Target(make_client("s3", credentials), BUCKET, PREFIX)
        target.check()
        best = {"list_s": math.inf, "reconcile_new_s": math.inf, "reconcile_same_s": math.inf}
        for number in range(rounds):
            started = time.perf_counter()
            listed = sum(1 for _ in target.iterate())
            best["list_s"] = min(best["list_s"], time.perf_counter() - started)
            with Catalog(Path(work) / f"catalog-{number}.db") as catalog:
                started = time.perf_counter()
                added = catalog.reconcile(target.iterate(), prefix=target.prefix)
                best["reconcile_new_s"] = min(
                    best["reconcile_new_s"], time.perf_counter() - started
                )
                started = time.perf_counter()
                same = catalog.reconcile(target.iterate(), prefix=target.prefix)
                best["reconcile_same_s"] = min(
                    best["reconcile_same_s"], time.perf_counter() - started
                )
            if listed != count or added.added != count or same.changed or same.added:
                raise RuntimeError(f"listed {listed}, added {added}, then {same}")
        _empty(endpoint)
    return {
        "benchmark": "reconcile",
        "objects": count,
        "rounds": rounds,
        "fill_s": fill_s,
        **best,
        "objects_per_s": count / best["reconcile_new_s"],
    }


def report(result: dict[str, Any]) -> str:
    """The table."""
    count = result["objects"]
    return f"Reconcile of {count:,} objects on the local server, best of {result['rounds']}\n" + (
        table(
            ["step", "seconds", "objects/s"],
            [
                [name, f"{result[key]:.2f}", f"{count / result[key]:,.0f}"]
                for name, key in (
                    ("store the objects (32 threads)", "fill_s"),
                    ("list only (S3Target.iterate)", "list_s"),
                    ("reconcile into an empty catalog", "reconcile_new_s"),
                    ("reconcile, nothing changed", "reconcile_same_s"),
                )
            ],
        )
    )


def main() -> None:
    """Run and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    info = machine()
    result = run(args.objects, args.rounds) | {"machine": info}
    print(machine_line(info))
    print(report(result))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
