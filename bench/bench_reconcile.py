"""Benchmark a full reconcile of N objects: time, peak memory, and how long others wait.

Not a test. Two sources of the listing:

* the local S3 server (default): stores N small objects under a prefix (a thread
  pool; not timed as part of the reconcile), then times what the coordinator's
  reconcile does: S3Target.iterate (list_objects_v2, 1,000 keys a page) into
  Catalog.reconcile, into an empty catalog (every object added) and again (nothing
  changed); and the listing alone;
* ``--synthetic``: a generator of N ArchivedObjects, no server, to measure the
  catalog's side at a million objects.

With ``--compare ENGINE_DIR`` each reconcile runs in a child process, once with the
engine at ENGINE_DIR the way its coordinator called it (the listing collected in a
list first, as main did before streaming: ``--compare
/work/main/custom_components/s3_glacier``) and once with this tree's engine
(streamed). Each child reports the seconds, its peak RSS above the RSS before the
step (Linux: VmHWM, reset through /proc/self/clear_refs), optionally the Python
peak (``--tracemalloc``, slower), and the longest a concurrent reader waited for the
catalog while the reconcile ran (a thread reading a meta value every 10 ms).

    .venv/bin/python bench/bench_reconcile.py --objects 10000
    .venv/bin/python bench/bench_reconcile.py --synthetic 1000000 \\
        --compare /work/main/custom_components/s3_glacier
    .venv/bin/python bench/bench_reconcile.py --objects 20000 \\
        --compare /work/main/custom_components/s3_glacier
    .venv/bin/python bench/bench_reconcile.py --inventory 200000 \\
        --compare /work/main/custom_components/s3_glacier

``--inventory N`` parses a generated vault inventory of N archives in two children:
main's way (the job's output read whole, then json.loads) and this tree's
(iter_inventory as the bytes are read).
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
import contextlib
import json
import math
import os
from pathlib import Path
import subprocess
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
from common import (
    BUCKET,
    ENGINE,
    ENV_ACCESS_KEY,
    ENV_ENDPOINT,
    ENV_SECRET_KEY,
    Endpoint,
    local_s3,
    machine,
    machine_line,
    table,
    write_json,
)

PREFIX = "reconcile/"
UPLOAD_THREADS = 32
MIB = 1024 * 1024

# One measured reconcile, in a fresh interpreter with the engine at argv[1] imported
# as the top-level package `archive`: argv = engine, catalog file, source
# (synthetic|server), objects, collect (1: list() first, as main's coordinator did),
# tracemalloc (1|0), then the names of the endpoint's environment variables and the
# bucket. Prints one JSON line.
CHILD = """
import datetime as dt, json, os, sys, threading, time, tracemalloc
engine, path, source, count, collect, trace, url, key, secret, bucket = sys.argv[1:11]
sys.path.insert(0, engine)
from archive.catalog import Catalog
from archive.models import ArchivedObject, StorageClass

PREFIX = "reconcile/"
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)

def synthetic(count):
    for i in range(count):
        yield ArchivedObject(
            key=f"{PREFIX}{i // 1000:03d}/{i:07d}.bin", size=100 + i % 5000,
            storage_class=StorageClass.GLACIER_IR,
            last_modified=START + dt.timedelta(seconds=i), etag=f"{i:032x}",
        )

def server_listing():
    from archive.client import make_client
    from archive.models import Credentials
    from archive.s3 import S3Target
    credentials = Credentials(
        access_key_id=os.environ[key], secret_access_key=os.environ[secret],
        region="us-east-1", endpoint_url=os.environ[url],
    )
    return S3Target(make_client("s3", credentials), bucket, PREFIX).iterate()

started = time.perf_counter()
catalog = Catalog(path)
open_s = time.perf_counter() - started
listing = synthetic(int(count)) if source == "synthetic" else server_listing()
stop, longest = threading.Event(), [0.0]

def reader():
    while not stop.is_set():
        asked = time.perf_counter()
        catalog.get_meta("probe")
        longest[0] = max(longest[0], time.perf_counter() - asked)
        stop.wait(0.01)

if trace == "1":
    tracemalloc.start()
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")  # reset VmHWM to the current RSS
rss_before = status("VmRSS")
probe = threading.Thread(target=reader)
probe.start()
started = time.perf_counter()
listed = list(listing) if collect == "1" else listing
result = catalog.reconcile(listed, prefix=PREFIX)
seconds = time.perf_counter() - started
del listed
rss_peak = status("VmHWM")
stop.set()
probe.join()
python_peak = tracemalloc.get_traced_memory()[1] if trace == "1" else None
catalog.close()
print(json.dumps({
    "seconds": seconds, "open_s": open_s, "rss_before": rss_before, "rss_peak": rss_peak,
    "python_peak": python_peak, "longest_wait_s": longest[0],
    "added": result.added, "objects": result.objects,
}))
"""


# One parse of a vault inventory file (argv: engine, file, stream 1|0), in a fresh
# interpreter: main read the job's output whole and parsed it with json.loads
# (parse_inventory); this tree parses it as it is read (iter_inventory).
CHILD_INVENTORY = """
import json, sys, time
engine, path, stream = sys.argv[1:4]
sys.path.insert(0, engine)
from archive import vault

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)

with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")
rss_before = status("VmRSS")
started = time.perf_counter()
with open(path, "rb") as body:
    if stream == "1":
        count = sum(1 for _ in vault.iter_inventory(body.read))
    else:
        count = len(vault.parse_inventory(body.read()))
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "rss_before": rss_before,
                  "rss_peak": status("VmHWM"), "archives": count}))
"""


def _write_inventory(path: Path, count: int) -> None:
    """An inventory-retrieval output of ``count`` archives, written as Glacier does."""
    with path.open("w", encoding="utf-8") as out:
        out.write('{"VaultARN":"arn:aws:glacier:us-east-1:123456789012:vaults/bench",')
        out.write('"InventoryDate":"2026-11-27T00:00:00Z","ArchiveList":[')
        for i in range(count):
            entry = {
                "ArchiveId": f"{i:0138d}",
                "ArchiveDescription": f"s3_glacier/1;uploaded=2026-01-01T00:00:00Z;"
                f"sha256={i:064x};name=file-{i}.bin",
                "CreationDate": "2026-01-01T00:00:00Z",
                "Size": 1_000_000 + i,
                "SHA256TreeHash": f"{i:064x}",
            }
            out.write(("," if i else "") + json.dumps(entry, separators=(",", ":")))
        out.write("]}")


def compare_inventory(count: int, before: Path) -> dict[str, Any]:
    """Parse an inventory of ``count`` archives with the engine at ``before`` and this one."""
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_inventory_") as work:
        document = Path(work) / "inventory.json"
        _write_inventory(document, count)
        for label, engine, stream in (("before", before, "0"), ("after", ENGINE, "1")):
            done = subprocess.run(
                [sys.executable, "-c", CHILD_INVENTORY, str(engine), str(document), stream],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode:
                raise RuntimeError(f"child failed: {done.stderr[-2000:]}")
            runs[label] = json.loads(done.stdout.strip().splitlines()[-1])
            if runs[label]["archives"] != count:
                raise RuntimeError(f"{label}: {runs[label]}")
        size = document.stat().st_size
    return {"benchmark": "inventory_compare", "archives": count, "bytes": size, "runs": runs}


def inventory_report(result: dict[str, Any]) -> str:
    """The table of an inventory comparison."""
    return (
        f"Parse of a vault inventory of {result['archives']:,} archives"
        f" ({result['bytes'] / MIB:,.0f} MiB of JSON)\n"
        + table(
            ["run", "seconds", "peak RSS above start, MiB"],
            [
                [
                    "before: read whole, json.loads" if label == "before" else "after: streamed",
                    f"{run['seconds']:.1f}",
                    f"{(run['rss_peak'] - run['rss_before']) / MIB:,.0f}",
                ]
                for label, run in result["runs"].items()
            ],
        )
    )


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


def _child(
    engine: Path,
    catalog: Path,
    source: str,
    count: int,
    *,
    collect: bool,
    trace: bool,
    env: dict[str, str],
) -> dict[str, Any]:
    """Run one measured reconcile in a fresh interpreter; return what it printed."""
    arguments = [str(engine), str(catalog), source, str(count), str(int(collect))]
    arguments += [str(int(trace)), ENV_ENDPOINT, ENV_ACCESS_KEY, ENV_SECRET_KEY, BUCKET]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *arguments],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"child failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def compare(source: str, count: int, before: Path, *, trace: bool) -> dict[str, Any]:
    """Reconcile ``count`` listed objects with the engine at ``before`` and with this one.

    Each engine reconciles into an empty catalog (every object added), then the same
    listing again (nothing changed), each step in its own process.
    """
    runs: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        if source == "server":
            endpoint = stack.enter_context(local_s3())
            _empty(endpoint)
            stack.callback(_empty, endpoint)
            _fill(endpoint, count)
            env = endpoint.env()
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_reconcile_")))
        for label, engine, collect in (("before", before, True), ("after", ENGINE, False)):
            catalog = work / f"{label}.db"
            for step in ("new", "same"):
                result = _child(
                    engine, catalog, source, count, collect=collect, trace=trace, env=env
                )
                if result["objects"] != count or result["added"] != (count if step == "new" else 0):
                    raise RuntimeError(f"{label} {step}: {result}")
                runs[f"{label}_{step}"] = result
    return {
        "benchmark": "reconcile_compare",
        "source": source,
        "objects": count,
        "before_engine": str(before),
        "runs": runs,
    }


def compare_report(result: dict[str, Any]) -> str:
    """The table of a comparison."""
    count = result["objects"]
    rows = []
    for name, run in result["runs"].items():
        label, step = name.split("_")
        python_peak = run["python_peak"]
        rows.append(
            [
                f"{label}: {'into an empty catalog' if step == 'new' else 'nothing changed'}",
                f"{run['seconds']:.1f}",
                f"{(run['rss_peak'] - run['rss_before']) / MIB:,.0f}",
                "" if python_peak is None else f"{python_peak / MIB:,.0f}",
                f"{run['longest_wait_s']:.2f}",
                f"{run['open_s']:.2f}",
            ]
        )
    return (
        f"Reconcile of {count:,} listed objects ({result['source']} listing); before ="
        f" {result['before_engine']} with the listing collected first, after = this tree"
        " streaming\n"
        + table(
            [
                "run",
                "seconds",
                "peak RSS above start, MiB",
                "Python peak, MiB",
                "longest reader wait, s",
                "open s",
            ],
            rows,
        )
    )


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
    parser.add_argument(
        "--synthetic", type=int, metavar="N", help="list N generated objects, no server"
    )
    parser.add_argument(
        "--compare", type=Path, metavar="ENGINE_DIR", help="also run the engine at ENGINE_DIR"
    )
    parser.add_argument(
        "--inventory", type=int, metavar="N", help="parse a vault inventory of N archives"
    )
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python's peak")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    info = machine()
    print(machine_line(info))
    if args.inventory:
        result = compare_inventory(args.inventory, args.compare or ENGINE) | {"machine": info}
        print(inventory_report(result))
    elif args.compare or args.synthetic:
        source, count = (
            ("synthetic", args.synthetic) if args.synthetic else ("server", args.objects)
        )
        before = args.compare or ENGINE
        result = compare(source, count, before, trace=args.tracemalloc) | {"machine": info}
        print(compare_report(result))
    else:
        result = run(args.objects, args.rounds) | {"machine": info}
        print(report(result))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
