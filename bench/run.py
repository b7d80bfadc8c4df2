"""Run every benchmark against one local SeaweedFS, print the tables, write the JSON.

Not a test; scripts/bench calls this after preparing the environment.

    .venv/bin/python bench/run.py [--quick] [--memory-gib N]

Profiles (sizes, rounds):
  quick  transfer 64 MiB x 2, loop lag 256 MiB x 2, tree hash 64 MiB x 3,
         catalog 10,000 and 100,000 rows, reconcile of 1,000 objects x 2
  full   transfer 1 GiB x 3, loop lag 1 GiB x 3, tree hash 512 MiB x 5,
         catalog 10,000 and 1,000,000 rows, reconcile of 10,000 objects x 3
The results go to bench/results/<profile>-<UTC time>.json and latest-<profile>.json.
``--memory-gib N`` adds bench_memory.py (one upload's peak RSS, sparse files of N GiB
and 4 GiB to a local endpoint that discards bodies; about a minute per 5 GiB).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time
from typing import Any

import bench_catalog
import bench_memory
import bench_reconcile
import bench_transfer
import bench_treehash
from common import (
    BUCKET,
    RESULTS,
    ROOT,
    Endpoint,
    SeaweedFS,
    ensure_bucket,
    lag_report,
    machine,
    machine_line,
    table,
    write_json,
)

PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "transfer": (64, 2),
        "loop_lag": (256, 2),
        "idle_s": 1,
        "lag_reference": True,
        "treehash": (64, 3),
        "catalog": [10_000, 100_000],
        "reconcile": (1_000, 2),
    },
    "full": {
        "transfer": (1024, 3),
        "loop_lag": (1024, 3),
        "idle_s": 2,
        "lag_reference": True,
        "treehash": (512, 5),
        "catalog": [10_000, 1_000_000],
        "reconcile": (10_000, 3),
    },
}


MET = {True: "yes", False: "NO", None: "-"}


def _step(name: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    result = work()
    result["elapsed_s"] = time.perf_counter() - started
    print(f"[bench] {name}: {result['elapsed_s']:.1f} s", file=sys.stderr, flush=True)
    return result


def _loop_lag(
    size_mib: int, rounds: int, idle_s: float, reference: bool, endpoint: Endpoint
) -> dict[str, Any]:
    """Run bench_loop_lag.py under pytest (the Home Assistant harness); read its JSON."""
    with tempfile.TemporaryDirectory(prefix="bench_lag_") as work:
        output = Path(work) / "loop_lag.json"
        env = {
            **os.environ,
            **endpoint.env(),
            "S3_GLACIER_BENCH_SIZE_MIB": str(size_mib),
            "S3_GLACIER_BENCH_ROUNDS": str(rounds),
            "S3_GLACIER_BENCH_IDLE_S": str(idle_s),
            "S3_GLACIER_BENCH_REFERENCE": "1" if reference else "0",
            "S3_GLACIER_BENCH_LAG_JSON": str(output),
        }
        command = [
            sys.executable, "-m", "pytest", "bench/bench_loop_lag.py", "-q",
            "-p", "no:cacheprovider", "-p", "no:sugar", "-s", "-W", "ignore::DeprecationWarning",
        ]  # fmt: skip
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0 or not output.exists():
            tail = (done.stdout + done.stderr)[-3000:]
            return {"benchmark": "loop lag", "failed": f"pytest exited {done.returncode}: {tail}"}
        return json.loads(output.read_text(encoding="utf-8"))


def _lag_report(result: dict[str, Any]) -> str:
    if "failed" in result:
        return f"Loop lag: FAILED\n{result['failed']}"
    return lag_report(result)


def _typical(phase: dict[str, Any]) -> dict[str, Any]:
    """The median round of a loop-lag phase by p99 (of two, the worse)."""
    rounds = sorted(phase["rounds"], key=lambda m: (m["p99_ms"], m["max_ms"]))
    return rounds[len(rounds) // 2]


def targets(results: dict[str, Any], profile: str) -> list[dict[str, Any]]:
    """The issue's targets, measured."""
    rows: list[dict[str, Any]] = []

    def add(target: str, measured: str, met: bool | None, note: str = "") -> None:
        rows.append({"target": target, "measured": measured, "met": met, "note": note})

    transfer = results["transfer"]
    archive = {r["client"]: r for r in transfer["archive"]}
    engine = archive["engine"]["mib_per_s"]
    for client, factor, label in (
        ("boto3", 1.0, "boto3 upload_file"),
        ("aws-cli", 1.1, "1.1 x aws s3 cp"),
    ):
        if client in archive:
            other = archive[client]["mib_per_s"]
            add(
                f"archive ≥ {label}",
                f"{engine / other:.2f}x",
                engine >= factor * other,
                f"{engine:.0f} vs {other:.0f} MiB/s, {transfer['size_mib']} MiB",
            )
    growth = archive["engine"]["peak_rss_growth_mib"]
    add(
        "archive peak RSS growth ≤ 80 MiB",
        f"{growth:.0f} MiB",
        growth <= 80,
        f"{transfer['size_mib']} MiB file",
    )
    lag = results["loop_lag"]
    if "phases" in lag:
        name = "archive (s3_glacier.archive)"
        typical, worst = _typical(lag["phases"][name]), lag["phases"][name]["worst"]
        note = f"median of {lag['rounds']} rounds; worst round {worst['p99_ms']:.1f} / "
        note += f"{worst['max_ms']:.1f} ms; {lag['size_mib']} MiB"
        add(
            "loop lag p99 < 10 ms, max < 50 ms",
            f"{typical['p99_ms']:.1f} / {typical['max_ms']:.1f} ms",
            typical["p99_ms"] < 10 and typical["max_ms"] < 50,
            note,
        )
    tree = results["treehash"]
    if "results" in tree:
        by_way = {r["way"]: r for r in tree["results"]}
        for way in ("TreeHasher (1 MiB updates)", "tree_hash_file"):
            ratio = by_way[way]["vs_sha256"]
            add(f"{way} ≥ 0.9 x SHA-256", f"{ratio:.2f}x", ratio >= 0.9)
    else:
        add("tree hash ≥ 0.9 x SHA-256", "not measured", None, tree.get("skipped", ""))
    largest = max(results["catalog"]["results"], key=lambda r: r["rows"])
    add(
        "refresh < 50 ms at 1,000,000 rows",
        f"{largest['refresh_ms']:.2f} ms at {largest['rows']:,} rows",
        largest["refresh_ms"] < 50 if largest["rows"] >= 1_000_000 else None,
        "" if largest["rows"] >= 1_000_000 else f"{profile}: 1,000,000 rows in the full run",
    )
    return rows


def main() -> None:
    """Run the profile's benchmarks; print and save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick profile")
    parser.add_argument("--memory-gib", type=int, help="also the memory benchmark, this large")
    args = parser.parse_args()
    profile = "quick" if args.quick else "full"
    sizes = PROFILES[profile]
    started = time.perf_counter()
    info = machine()
    results: dict[str, Any] = {}

    results["treehash"] = _step("tree hash", lambda: bench_treehash.run(*sizes["treehash"]))
    results["catalog"] = _step("catalog", lambda: bench_catalog.run(sizes["catalog"]))
    if args.memory_gib:
        results["memory"] = _step("memory", lambda: bench_memory.run(args.memory_gib))
    with tempfile.TemporaryDirectory(prefix="bench_seaweedfs_") as directory:
        server = SeaweedFS(Path(directory))
        server.start()
        try:
            endpoint = Endpoint(
                server.url, server.access_key_id, server.secret_access_key, pid=server.pid
            )
            ensure_bucket(endpoint, BUCKET)
            os.environ.update(endpoint.env())  # the benchmarks below use this server
            results["transfer"] = _step("transfer", lambda: bench_transfer.run(*sizes["transfer"]))
            results["reconcile"] = _step(
                "reconcile", lambda: bench_reconcile.run(*sizes["reconcile"])
            )
            results["loop_lag"] = _step(
                "loop lag",
                lambda: _loop_lag(
                    *sizes["loop_lag"], sizes["idle_s"], sizes["lag_reference"], endpoint
                ),
            )
        finally:
            server.stop()

    report = {
        "profile": profile,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": time.perf_counter() - started,
        "machine": info,
        "results": results,
        "targets": targets(results, profile),
    }
    print()
    print(f"== scripts/bench ({profile}) on {machine_line(info)}")
    print()
    print(bench_transfer.report(results["transfer"]))
    print()
    print(_lag_report(results["loop_lag"]))
    print()
    print(bench_treehash.report(results["treehash"]))
    print()
    print("Catalog: coordinator refresh (summarize) and reconcile of a 1 % changed listing")
    print(bench_catalog.report(results["catalog"]))
    print()
    print(bench_reconcile.report(results["reconcile"]))
    print()
    if "memory" in results:
        print(bench_memory.report(results["memory"]))
        print()
    print("Targets")
    print(
        table(
            ["target", "measured", "met", "note"],
            [
                [
                    t["target"],
                    t["measured"],
                    {True: "yes", False: "NO", None: "-"}[t["met"]],
                    t["note"],
                ]
                for t in report["targets"]
            ],
        )
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"{profile}-{stamp}.json", f"latest-{profile}.json"):
        write_json(RESULTS / name, report)
    print(f"\n{time.perf_counter() - started:.0f} s; JSON: bench/results/latest-{profile}.json")


if __name__ == "__main__":
    main()
