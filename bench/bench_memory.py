"""Benchmark the memory one archive needs, whatever the file's size.

Not a test. Sparse files (no disk space, read as zeros) are archived with the engine's
``S3Target.put`` to a local endpoint that reads every body and keeps none of it
(discard_server.py), so files far larger than the machine's memory or disk can be
sent over loopback. Each case runs in a process of its own; the figure is its peak RSS
growth during the upload (VmHWM reset just before it, less the RSS at the start).

Cases: the defaults (16 MiB parts, 4 at a time) on a large file; large parts asked
with high concurrency, with the memory bound and with it lifted (what the engine did
before: part size x concurrency); a single PUT of a large file (streamed from the file).

    .venv/bin/python bench/bench_memory.py [--size-gib 100] [--large-only] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from common import ENGINE, MIB, machine, machine_line, table, write_json

HERE = Path(__file__).resolve().parent
GIB = 1024 * MIB


def cases(size_gib: int) -> list[dict[str, Any]]:
    """What is measured: (name, file size, part size, concurrency asked, bound on)."""
    return [
        {"case": f"{size_gib} GiB, defaults", "size": size_gib * GIB, "part": 16 * MIB,
         "concurrency": 4, "bound": True},
        {"case": "4 GiB, 64 MiB parts x 8", "size": 4 * GIB, "part": 64 * MIB,
         "concurrency": 8, "bound": True},
        {"case": "4 GiB, 64 MiB parts x 8, no bound", "size": 4 * GIB, "part": 64 * MIB,
         "concurrency": 8, "bound": False},
        {"case": "4 GiB, 512 MiB parts x 4", "size": 4 * GIB, "part": 512 * MIB,
         "concurrency": 4, "bound": True},
        {"case": "1 GiB single PUT", "size": GIB, "part": GIB, "concurrency": 4, "bound": True},
    ]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def upload(url: str, path: Path, part: int, concurrency: int, bound: bool) -> dict[str, Any]:
    """In the child: archive ``path``; its peak RSS growth and time."""
    sys.path.insert(0, str(ENGINE))
    from archive import s3, transfer  # noqa: PLC0415
    from archive.client import make_client  # noqa: PLC0415
    from archive.models import (  # noqa: PLC0415
        Credentials,
        ServerSideEncryption,
        StorageClass,
        TransferOptions,
    )

    if not bound:
        transfer.MAX_TRANSFER_MEMORY = 1 << 50
    credentials = Credentials(
        access_key_id="bench", secret_access_key="bench", region="us-east-1", endpoint_url=url
    )
    target = s3.S3Target(make_client("s3", credentials), "bench")
    options = TransferOptions(
        storage_class=StorageClass.STANDARD,
        encryption=ServerSideEncryption.NONE,
        part_size=part,
        concurrency=concurrency,
    )
    rss_start = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    started = time.perf_counter()
    next_report = [8 * GIB]

    def progress(done: int) -> None:
        # A long run shows how far it got (on stderr), should it be stopped early.
        if done >= next_report[0]:
            next_report[0] += 8 * GIB
            growth = (_status_kib("VmHWM") - rss_start) / 1024
            elapsed = time.perf_counter() - started
            print(
                f"[memory]   {done / GIB:.0f} GiB sent in {elapsed:.0f} s, "
                f"peak RSS growth so far {growth:.0f} MiB",
                file=sys.stderr,
                flush=True,
            )

    result = target.put(path, f"memory/{path.name}", options, progress=progress)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "parts": result.parts,
        "stored": result.object.size,
        "peak_rss_growth_mib": (_status_kib("VmHWM") - rss_start) / 1024,
        "in_flight": transfer.parallel_parts(s3.plan_part_size(path.stat().st_size, part),
                                             concurrency) if result.parts else 0,
    }  # fmt: skip


def run(size_gib: int, *, large_only: bool = False) -> dict[str, Any]:
    """Every case (or only the first, large one) against one discard server."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, str(HERE / "discard_server.py"), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    rows = []
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError("discard_server did not start")
        with tempfile.TemporaryDirectory(prefix="bench_memory_") as work:
            chosen = cases(size_gib)[:1] if large_only else cases(size_gib)
            for number, case in enumerate(chosen):
                path = Path(work) / f"sparse{number}.bin"
                with path.open("wb") as handle:
                    handle.truncate(case["size"])
                command = [
                    sys.executable, str(Path(__file__).resolve()), "--child",
                    f"http://127.0.0.1:{port}", str(path), str(case["part"]),
                    str(case["concurrency"]), "1" if case["bound"] else "0",
                ]  # fmt: skip
                print(f"[memory] {case['case']} ...", file=sys.stderr, flush=True)
                # The child's stderr (its progress) goes straight through.
                done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
                path.unlink()
                if done.returncode != 0:
                    raise RuntimeError(f"{case['case']}: exited {done.returncode}")
                measured = json.loads(done.stdout.splitlines()[-1])
                if measured["stored"] != case["size"]:
                    raise RuntimeError(f"{case['case']}: stored {measured['stored']} bytes")
                rows.append(case | measured)
    finally:
        server.terminate()
        server.wait(10)
    return {"benchmark": "memory", "size_gib": size_gib, "cases": rows}


def report(result: dict[str, Any]) -> str:
    """One table."""
    return "Archive memory (peak RSS growth of one upload; sparse files, discard server)\n" + (
        table(
            ["case", "parts", "in flight", "RSS growth MiB", "s", "MiB/s"],
            [
                [
                    r["case"],
                    r["parts"] or "single",
                    r["in_flight"] or "-",
                    f"{r['peak_rss_growth_mib']:.0f}",
                    f"{r['seconds']:.0f}",
                    f"{r['size'] / MIB / r['seconds']:.0f}",
                ]
                for r in result["cases"]
            ],
        )
    )


def main() -> None:
    """Run and report (or, with --child, one upload)."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        url, path, part, concurrency, bound = sys.argv[2:7]
        result = upload(url, Path(path), int(part), int(concurrency), bound == "1")
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=int, default=100)
    parser.add_argument("--large-only", action="store_true", help="only the large file")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    info = machine()
    result = run(args.size_gib, large_only=args.large_only) | {"machine": info}
    print(machine_line(info))
    print(report(result))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    main()
