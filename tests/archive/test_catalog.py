"""The SQLite catalog: round trips, durability, reconcile, aggregates, crash safety."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
import errno
import os
from pathlib import Path
import random
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from custom_components.s3_glacier.archive import catalog as catalog_module
from custom_components.s3_glacier.archive.catalog import (
    SCHEMA_VERSION,
    Catalog,
    CatalogDamagedError,
    CatalogError,
    ReconcileResult,
    is_database_file,
    open_catalog,
)
from custom_components.s3_glacier.archive.models import (
    GIB,
    KIB,
    MIB,
    ArchivedObject,
    PendingRestore,
    RestoreState,
    RestoreTier,
    StorageClass,
)
from custom_components.s3_glacier.archive.pricing import ClassUsage, summarize

SC = StorageClass
NOW = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)


def obj(
    key: str, size: int = 1000, storage_class: StorageClass = SC.GLACIER_IR, **kw: object
) -> ArchivedObject:
    """A minimal object; keyword arguments override its fields."""
    fields: dict[str, object] = {
        "key": key,
        "size": size,
        "storage_class": storage_class,
        "last_modified": NOW,
    }
    fields.update(kw)
    return ArchivedObject(**fields)  # type: ignore[arg-type]


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    with Catalog(tmp_path / "catalog.db") as opened:
        yield opened


def aggregates_match_rows(path: Path) -> bool:
    """Whether the trigger-maintained tables equal a GROUP BY over the rows."""
    with closing(sqlite3.connect(path)) as conn:
        totals = conn.execute(
            "SELECT storage_class, objects, bytes, min128_bytes, objects_from_128k"
            " FROM class_totals ORDER BY storage_class"
        ).fetchall()
        expected_totals = conn.execute(
            "SELECT storage_class, count(*), sum(size), sum(max(size, 131072)),"
            " sum(size >= 131072) FROM objects GROUP BY storage_class ORDER BY storage_class"
        ).fetchall()
        days = conn.execute(
            "SELECT day, storage_class, objects, bytes, min128_bytes FROM class_days"
            " ORDER BY day, storage_class"
        ).fetchall()
        expected_days = conn.execute(
            "SELECT last_modified_us / 86400000000 AS day, storage_class, count(*), sum(size),"
            " sum(max(size, 131072)) FROM objects GROUP BY day, storage_class"
            " ORDER BY day, storage_class"
        ).fetchall()
    return totals == expected_totals and days == expected_days


# Round trips and durability


def test_round_trip_of_every_field(catalog: Catalog) -> None:
    plus_two = timezone(timedelta(hours=2))
    s3_object = ArchivedObject(
        key="ha/backups/2026-06-01.tar",
        size=123_456_789,
        storage_class=SC.DEEP_ARCHIVE,
        last_modified=datetime(2026, 6, 1, 14, 5, 6, 789_012, tzinfo=plus_two),
        etag='"0123456789abcdef-3"',
        sha256="ab" * 32,
        restore_state=RestoreState.RESTORED,
        restore_expiry=datetime(2026, 6, 8, 0, 0, 0, 1, tzinfo=UTC),
    )
    vault_archive = ArchivedObject(
        key="archive-id-XYZ",
        size=0,
        storage_class=SC.VAULT,
        last_modified=datetime(2013, 3, 20, 17, 3, 43, 221_000, tzinfo=UTC),
        archive_id="archive-id-XYZ",
        description='{"path": "/media/ünïcode.jpg"}',
        tree_hash="cd" * 32,
        restore_state=RestoreState.IN_PROGRESS,
    )
    catalog.record(s3_object)
    catalog.record(vault_archive)

    for original in (s3_object, vault_archive):
        loaded = catalog.get(original.key)
        assert loaded == original
        assert loaded is not None
        assert loaded.last_modified.tzinfo is UTC
        assert loaded.last_modified.utcoffset() == timedelta(0)
    loaded = catalog.get(s3_object.key)
    assert loaded is not None
    assert loaded.restore_expiry is not None
    assert loaded.restore_expiry.tzinfo is UTC
    assert catalog.get("missing") is None


def test_reopen_after_close(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "catalog.db"
    with Catalog(path) as first:
        first.record(obj("a", 5))
        first.set_meta("last_reconcile", '{"added": 1}')
    with Catalog(path) as second:
        assert second.get("a") == obj("a", 5)
        assert second.count() == 1
        assert second.get_meta("last_reconcile") == '{"added": 1}'
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_closed_catalog_refuses_calls(tmp_path: Path) -> None:
    catalog = Catalog(str(tmp_path / "catalog.db"))
    catalog.close()
    catalog.close()
    with pytest.raises(CatalogError, match="closed"):
        catalog.count()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(CatalogError, match="newer"):
        Catalog(path)


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    path.write_bytes(b"not a database, just some bytes " * 100)
    with pytest.raises(CatalogError):
        Catalog(path)


def test_record_upserts_and_remove(catalog: Catalog) -> None:
    catalog.record(obj("a", 5, sha256="11" * 32))
    catalog.record(obj("a", 7, SC.STANDARD))
    assert catalog.get("a") == obj("a", 7, SC.STANDARD)
    assert catalog.count() == 1
    assert catalog.remove("a") is True
    assert catalog.remove("a") is False
    assert catalog.count() == 0
    assert catalog.usage(NOW) == []


def test_naive_datetime_is_rejected_and_nothing_written(catalog: Catalog) -> None:
    naive = datetime(2026, 1, 1)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="timezone-aware"):
        catalog.record_many([obj("a"), obj("b", last_modified=naive)])
    assert catalog.count() == 0


def test_last_archived(catalog: Catalog) -> None:
    assert catalog.last_archived() is None
    catalog.record_many(
        [
            obj("old", last_modified=NOW - timedelta(days=3)),
            obj("new", last_modified=NOW),
            obj("tie", last_modified=NOW),
            obj("older", last_modified=NOW - timedelta(days=30)),
        ]
    )
    last = catalog.last_archived()
    assert last is not None
    assert last.key == "tie"


# Prefixes


def test_prefix_is_matched_exactly(catalog: Catalog) -> None:
    keys = ["a", "a%b/1", "a%c", "a_b/1", "axb/1", "ab", "b", "é/1", "é/2", "ê",
            "\ud7ffz", "\ue000", "\U0010ffffa", "\U0010ffff"]  # fmt: skip
    catalog.record_many(obj(key) for key in keys)

    def listed(prefix: str | None, limit: int | None = None) -> list[str]:
        return [o.key for o in catalog.objects(prefix, limit)]

    assert listed("a%") == ["a%b/1", "a%c"]
    assert listed("a_") == ["a_b/1"]
    assert listed("a") == ["a", "a%b/1", "a%c", "a_b/1", "ab", "axb/1"]
    assert listed("é") == ["é/1", "é/2"]
    assert listed("\ud7ff") == ["\ud7ffz"]
    assert listed("\U0010ffff") == ["\U0010ffff", "\U0010ffffa"]
    assert listed("zzz") == []
    assert listed(None) == sorted(keys, key=lambda k: k.encode("utf-8", "surrogatepass"))
    assert listed("", 3) == ["a", "a%b/1", "a%c"]
    assert listed("a", 0) == []
    with pytest.raises(ValueError, match="limit"):
        catalog.objects(limit=-1)


# Reconcile


def test_reconcile_counts_and_prefix_scope(catalog: Catalog) -> None:
    earlier = NOW - timedelta(days=2)
    catalog.record_many(
        [
            obj("ha/same", 10, etag="e1", sha256="aa" * 32, last_modified=earlier),
            obj("ha/grown", 10, etag="e2", sha256="bb" * 32, last_modified=earlier),
            obj("ha/rewritten", 10, etag="e3", sha256="cc" * 32, last_modified=earlier),
            obj("ha/gone", 10, last_modified=earlier),
            obj("ha/touched", 10, etag="e5", sha256="dd" * 32, last_modified=earlier),
            obj("ha/restoring", 10, SC.GLACIER, etag="e6", sha256="ee" * 32),
            obj("ha/no-etag", 10, sha256="ff" * 32, last_modified=earlier),
            obj("ha_other/kept", 10),
            obj("other/kept", 10),
        ]
    )
    listing = [
        obj("ha/same", 10, etag="e1", last_modified=earlier),
        obj("ha/grown", 20, etag="e2b", last_modified=NOW),
        obj("ha/rewritten", 10, etag="e3b", last_modified=NOW),
        obj("ha/touched", 10, etag="e5", last_modified=NOW),
        obj("ha/restoring", 10, SC.GLACIER, etag="e6", restore_state=RestoreState.IN_PROGRESS),
        obj("ha/no-etag", 10, etag="e7", last_modified=earlier),
        obj("ha/new", 30, etag="e8"),
    ]
    result = catalog.reconcile(listing, prefix="ha/")
    assert result == ReconcileResult(added=1, removed=1, changed=3, objects=7, bytes=100)

    def sha(key: str) -> str | None:
        found = catalog.get(key)
        assert found is not None
        return found.sha256

    assert sha("ha/same") == "aa" * 32  # listings carry no checksum: ours is kept
    assert sha("ha/grown") is None  # new content: our checksum no longer applies
    assert sha("ha/rewritten") is None
    assert sha("ha/touched") == "dd" * 32
    assert sha("ha/restoring") == "ee" * 32
    assert sha("ha/no-etag") == "ff" * 32  # the etag was only filled in
    assert catalog.get("ha/touched") == obj(
        "ha/touched", 10, etag="e5", sha256="dd" * 32, last_modified=NOW
    )
    assert catalog.get("ha/no-etag") == obj(
        "ha/no-etag", 10, etag="e7", sha256="ff" * 32, last_modified=earlier
    )
    assert catalog.get("ha/gone") is None
    assert [o.key for o in catalog.objects("ha_other/")] == ["ha_other/kept"]
    assert [o.key for o in catalog.objects("other/")] == ["other/kept"]

    # the same listing again changes nothing
    again = catalog.reconcile(listing, prefix="ha/")
    assert again == ReconcileResult(added=0, removed=0, changed=0, objects=7, bytes=100)
    assert catalog.usage(NOW) == summarize(catalog.objects(), NOW)


def test_reconcile_keeps_vault_metadata(catalog: Catalog) -> None:
    archive = obj("id-1", 10, SC.VAULT, archive_id="id-1", description="d", tree_hash="t")
    catalog.record(archive)
    result = catalog.reconcile([obj("id-1", 10, SC.VAULT)])
    assert result == ReconcileResult(added=0, removed=0, changed=0, objects=1, bytes=10)
    assert catalog.get("id-1") == archive


def test_reconcile_rejects_keys_outside_the_prefix(catalog: Catalog) -> None:
    catalog.record(obj("ha/a"))
    with pytest.raises(ValueError) as err:
        catalog.reconcile([obj("elsewhere/b")], prefix="ha/")
    assert str(err.value) == "listed key 'elsewhere/b' is outside the reconciled prefix"
    assert [o.key for o in catalog.objects()] == ["ha/a"]


def test_reconcile_of_everything_at_scale(catalog: Catalog) -> None:
    catalog.record_many(obj(f"k/{i:05d}", i) for i in range(12_000))
    listing = [obj(f"k/{i:05d}", i + (i % 10 == 0)) for i in range(2_000, 14_000)]
    result = catalog.reconcile(listing)
    # 2,000 gone, 2,000 new, every tenth of the 10,000 kept ones resized
    assert result.added == 2_000
    assert result.removed == 2_000
    assert result.changed == 1_000
    assert result.objects == 12_000
    assert result.bytes == sum(o.size for o in listing)
    assert catalog.count() == 12_000
    assert catalog.usage(NOW) == summarize(listing, NOW)


# Aggregates


MIN_SIZE = {SC.STANDARD_IA: 128 * KIB, SC.ONEZONE_IA: 128 * KIB, SC.GLACIER_IR: 128 * KIB}
INDEX = {SC.GLACIER: 32 * KIB, SC.DEEP_ARCHIVE: 32 * KIB, SC.VAULT: 32 * KIB}
MIN_DAYS = {SC.STANDARD_IA: 30, SC.ONEZONE_IA: 30, SC.GLACIER_IR: 90, SC.GLACIER: 90,
            SC.VAULT: 90, SC.DEEP_ARCHIVE: 180}  # fmt: skip


def expected_usage(objects: list[ArchivedObject], now: datetime) -> list[ClassUsage]:
    """FACTS.md's rules restated independently of pricing.py, one object at a time."""
    sums: dict[StorageClass, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for o in objects:
        c = o.storage_class
        billable = max(o.size, MIN_SIZE.get(c, 0)) + INDEX.get(c, 0)
        used = (now.astimezone(UTC).date() - o.last_modified.astimezone(UTC).date()).days
        left = max(0, MIN_DAYS.get(c, 0) - max(0, used))
        for i, value in enumerate((1, o.size, billable, o.size >= 128 * KIB, billable * left)):
            sums[c][i] += value
    return [
        ClassUsage(c, *sums[c][:4], early_byte_days=Decimal(sums[c][4]))
        for c in StorageClass
        if c in sums
    ]


DAY_US = 86_400_000_000


def random_objects(rng: random.Random, count: int, start: int = 0) -> list[ArchivedObject]:
    edges = [0, 1, 128 * KIB - 1, 128 * KIB, 128 * KIB + 1, 5 * MIB, 3 * GIB]
    return [
        obj(
            f"r/{i:05d}",
            rng.choice(edges) if rng.random() < 0.3 else rng.randrange(0, 20 * MIB),
            rng.choice(list(StorageClass)),
            # a day into the future (clock skew) to 400 days back, to the microsecond
            last_modified=NOW - timedelta(microseconds=rng.randrange(-DAY_US, 400 * DAY_US)),
        )
        for i in range(start, start + count)
    ]  # fmt: skip


def test_usage_equals_a_python_computation(tmp_path: Path) -> None:
    rng = random.Random(20260601)
    objects = {o.key: o for o in random_objects(rng, 2_000)}
    path = tmp_path / "catalog.db"
    with Catalog(path) as catalog:
        catalog.record_many(objects.values())
        for now in (NOW, NOW + timedelta(hours=11, minutes=30), NOW + timedelta(days=100)):
            assert catalog.usage(now) == expected_usage(list(objects.values()), now)

        # deletes and updates (class, size, day) move rows between the aggregates
        for key in rng.sample(sorted(objects), 40):  # one commit (fsync) each
            assert catalog.remove(key)
            del objects[key]
        changed = random_objects(rng, 300)
        replacements = [o for o in changed if o.key in objects]
        catalog.record_many(replacements)
        objects.update((o.key, o) for o in replacements)
        assert catalog.usage(NOW) == expected_usage(list(objects.values()), NOW)
        assert catalog.usage(NOW) == summarize(objects.values(), NOW)
        assert catalog.count() == len(objects)
    assert aggregates_match_rows(path)


def test_usage_needs_an_aware_now(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        catalog.usage(datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test


# Pending restores and meta


def test_pending_restores_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    later = PendingRestore(
        key="ha/b",
        tier=RestoreTier.BULK,
        days=7,
        requested_at=NOW,
        ready_by=NOW + timedelta(hours=48),
        destination=Path("/media/restored/b.tar"),
        overwrite=True,
        job_id="job-123",
    )
    sooner = PendingRestore(
        key="ha/a",
        tier=RestoreTier.EXPEDITED,
        days=1,
        requested_at=NOW + timedelta(microseconds=1),
        ready_by=NOW + timedelta(minutes=5),
    )
    with Catalog(path) as catalog:
        catalog.add_pending_restore(later)
        catalog.add_pending_restore(sooner)
    with Catalog(path) as catalog:
        assert catalog.pending_restores() == [sooner, later]
        extended = PendingRestore(
            key="ha/a",
            tier=RestoreTier.STANDARD,
            days=3,
            requested_at=NOW,
            ready_by=NOW + timedelta(days=5),
        )
        catalog.add_pending_restore(extended)
        assert catalog.pending_restores() == [later, extended]
        assert catalog.remove_pending_restore("ha/b") is True
        assert catalog.remove_pending_restore("ha/b") is False
        assert catalog.pending_restores() == [extended]


def test_meta(catalog: Catalog) -> None:
    assert catalog.get_meta("x") is None
    catalog.set_meta("x", "1")
    catalog.set_meta("x", "2")
    assert catalog.get_meta("x") == "2"


# Concurrency and crashes


def test_concurrent_threads(catalog: Catalog) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(50):
                catalog.record(obj(f"t{n}/{i:03d}", i, SC.STANDARD_IA))
                catalog.usage(NOW)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert catalog.count() == 200
    assert catalog.usage(NOW) == summarize(catalog.objects(), NOW)


# Runs in a fresh interpreter. The engine package is imported as the top-level
# package `archive` so that the writer does not need Home Assistant.
CRASHING_WRITER = """
import os, sys
from datetime import UTC, datetime, timedelta
from archive.catalog import Catalog
from archive.models import ArchivedObject, StorageClass

def make(i):
    return ArchivedObject(
        key=f"k/{i:06d}", size=1000 + i, storage_class=StorageClass.GLACIER,
        last_modified=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i),
    )

catalog = Catalog(sys.argv[1])
catalog.record_many(make(i) for i in range(100))
# A small page cache makes SQLite spill the uncommitted pages into the WAL file.
catalog._conn.execute("PRAGMA cache_size = 100")

def doomed():
    yield from (make(i) for i in range(100, 20_000))
    os._exit(3)  # die inside the open transaction: no rollback, no close

catalog.record_many(doomed())
"""


def test_crash_mid_write_leaves_no_partial_rows(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    engine_parent = Path(catalog_module.__file__).parents[1]
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, str(path)],
        env={**os.environ, "PYTHONPATH": str(engine_parent)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr.decode()
    # the uncommitted rows did reach the write-ahead log before the crash
    assert Path(f"{path}-wal").stat().st_size > 1_000_000

    with Catalog(path) as catalog:
        assert catalog.count() == 100
        assert [o.key for o in catalog.objects()] == [f"k/{i:06d}" for i in range(100)]
        assert catalog.usage(NOW) == summarize(catalog.objects(), NOW)
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT count(*) FROM objects").fetchone() == (100,)
    assert aggregates_match_rows(path)


def test_reconcile_keeps_rows_recorded_since(catalog: Catalog) -> None:
    """keep_since: rows that a lagging listing cannot show yet are not dropped."""
    old = datetime(2026, 11, 1, tzinfo=UTC)
    new = datetime(2026, 11, 20, tzinfo=UTC)
    catalog.record(obj("old", last_modified=old))
    catalog.record(obj("new", last_modified=new))
    catalog.record(obj("listed", last_modified=old))
    result = catalog.reconcile(
        [obj("listed", last_modified=old)], keep_since=datetime(2026, 11, 18, tzinfo=UTC)
    )
    assert [o.key for o in catalog.objects()] == ["listed", "new"]
    assert (result.removed, result.objects) == (1, 2)


# Reconcile while others write; a listing streamed in batches


def _in_other_thread(action: Callable[[], object]) -> None:
    """Run ``action`` in another thread, as an action's executor job would, and wait.

    The wait is bounded only to turn a deadlock (the catalog locked for the whole
    listing) into a failure instead of a hung test run.
    """
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the catalog stayed locked while the listing streamed"
    assert errors == []


def test_reconcile_keeps_what_was_written_while_listing(catalog: Catalog) -> None:
    """Rows recorded or removed after the listing started are left as written.

    Between two pages of the listing, another thread archives a new object, replaces
    one and deletes another; the rest of the listing still shows the old state of
    those keys (it was read before), and must not undo the writes.
    """
    catalog.record_many(obj(f"ha/{name}", 1) for name in ("a", "b", "c", "gone"))

    def listing() -> Iterator[ArchivedObject]:
        yield obj("ha/a", 1)

        def archive_and_delete() -> None:
            catalog.record(obj("ha/fresh", 7))
            catalog.record(obj("ha/b", 2))
            catalog.remove("ha/c")

        _in_other_thread(archive_and_delete)
        yield obj("ha/b", 1)
        yield obj("ha/c", 1)

    result = catalog.reconcile(listing(), prefix="ha/")

    assert {o.key: o.size for o in catalog.objects()} == {"ha/a": 1, "ha/b": 2, "ha/fresh": 7}
    assert result == ReconcileResult(added=0, removed=1, changed=0, objects=3, bytes=10)
    assert aggregates_match_rows(catalog.path)
    # Once the reconcile is over, writes are ordinary again: the next one removes.
    catalog.record(obj("ha/stray", 3))
    assert catalog.reconcile([obj("ha/a", 1)], prefix="ha/").removed == 3


def test_reconcile_streams_in_batches(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """The listing reaches the catalog a batch at a time, the lock free in between."""
    monkeypatch.setattr(catalog_module, "RECONCILE_BATCH", 100)
    seen_by_others: list[int] = []

    def listing() -> Iterator[ArchivedObject]:
        for i in range(1_000):
            if i % 250 == 0:
                _in_other_thread(lambda: seen_by_others.append(catalog.count()))
            yield obj(f"k/{i:04d}", i)

    result = catalog.reconcile(listing())
    assert seen_by_others == [0, 0, 0, 0]
    assert (result.added, result.objects) == (1_000, 1_000)


def test_a_failed_listing_changes_nothing(catalog: Catalog) -> None:
    """An error from the listing (after several batches) leaves the catalog as it was."""
    catalog.record_many(obj(f"k/{i:04d}", i) for i in range(10))

    def broken() -> Iterator[ArchivedObject]:
        yield from (obj(f"k/{i:04d}", i + 1) for i in range(2_500))
        raise ConnectionError("listing interrupted")

    with pytest.raises(ConnectionError):
        catalog.reconcile(broken())
    late_stray = [*(obj(f"k/{i:04d}") for i in range(2_500)), obj("elsewhere")]
    with pytest.raises(ValueError, match="outside"):
        catalog.reconcile(late_stray, prefix="k/")
    assert {o.key: o.size for o in catalog.objects()} == {f"k/{i:04d}": i for i in range(10)}
    # Nothing staged by the failed runs is left over for the next one.
    result = catalog.reconcile([obj("k/0000", 0)])
    assert result == ReconcileResult(added=0, removed=9, changed=0, objects=1, bytes=0)


# A damaged catalog


def _filled_catalog(path: Path, count: int = 2_000) -> None:
    path.parent.mkdir(exist_ok=True)
    with Catalog(path) as catalog:
        catalog.record_many(obj(f"k/{i:06d}", i) for i in range(count))


def _damage_pages(path: Path) -> bytes:
    """Overwrite two pages in the middle of the file; return the damaged bytes."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2 // 4096 * 4096
    data[middle : middle + 8192] = random.Random(1).randbytes(8192)
    path.write_bytes(bytes(data))
    return bytes(data)


def _wipe_header(path: Path) -> bytes:
    data = b"\0" * 100 + path.read_bytes()[100:]
    path.write_bytes(data)
    return data


def _null_in_pending_restores(path: Path) -> None:
    """Store a pending restore with neither tier nor days, which the schema forbids.

    The schema's NOT NULLs are lifted to write it, then put back: the rows are
    readable, only SQLite's quick check finds what is wrong with them.
    """
    for lift in (True, False):
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            (sql,) = conn.execute(
                "SELECT sql FROM sqlite_master WHERE name = 'pending_restores'"
            ).fetchone()
            strict, loose = "tier TEXT NOT NULL", "tier TEXT"
            days_strict, days_loose = "days INTEGER NOT NULL", "days INTEGER"
            if lift:
                changed = sql.replace(strict, loose).replace(days_strict, days_loose)
            else:
                changed = sql.replace(loose, strict).replace(days_loose, days_strict)
            conn.execute("PRAGMA writable_schema = ON")
            conn.execute(
                "UPDATE sqlite_master SET sql = ? WHERE name = 'pending_restores'", (changed,)
            )
        if lift:
            with closing(sqlite3.connect(path, isolation_level=None)) as conn:
                conn.execute(
                    "INSERT INTO pending_restores (key, requested_at_us, ready_by_us, overwrite)"
                    " VALUES ('k/1', 0, 0, 0)"
                )


def test_damage_the_quick_check_finds_is_named_in_the_error(tmp_path: Path) -> None:
    """Rows SQLite's quick check finds wrong (rather than failing to read): the error
    carries each of its findings."""
    path = tmp_path / "db" / "catalog.db"
    _filled_catalog(path, count=10)
    _null_in_pending_restores(path)

    with pytest.raises(CatalogDamagedError) as err:
        Catalog(path)
    assert str(err.value) == (
        "quick check: NULL value in pending_restores.tier; NULL value in pending_restores.days"
    )


@pytest.mark.parametrize("damage", [_damage_pages, _wipe_header])
def test_a_damaged_catalog_is_set_aside(tmp_path: Path, damage: Callable[[Path], bytes]) -> None:
    path = tmp_path / "db" / "catalog.db"
    _filled_catalog(path)
    damaged = damage(path)
    with pytest.raises(CatalogDamagedError):
        Catalog(path)

    catalog, aside = open_catalog(path, now=datetime(2026, 11, 27, 9, 30, 5, tzinfo=UTC))
    with catalog:
        assert aside == path.parent / "catalog.db.damaged-20261127T093005Z"
        assert aside.read_bytes() == damaged
        assert catalog.count() == 0
        catalog.record(obj("new"))
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "catalog.db",
        "catalog.db.damaged-20261127T093005Z",
    ]
    # A sound catalog opens as it is.
    reopened, aside = open_catalog(path)
    with reopened:
        assert aside is None
        assert [o.key for o in reopened.objects()] == ["new"]


def test_setting_aside_keeps_the_wal_with_its_file(tmp_path: Path) -> None:
    """The WAL moves with the damaged file (its last commits); a second damage gets its own name."""
    path = tmp_path / "db" / "catalog.db"
    _filled_catalog(path)
    _wipe_header(path)
    wal = b"frames of the last commits"
    Path(f"{path}-wal").write_bytes(wal)
    Path(f"{path}-shm").write_bytes(b"index")
    when = datetime(2026, 11, 27, 9, 30, 5, tzinfo=UTC)
    first, aside = open_catalog(path, now=when)
    first.close()
    assert aside is not None
    assert Path(f"{aside}-wal").read_bytes() == wal
    _wipe_header(path)
    second, again = open_catalog(path, now=when)
    second.close()
    assert again == path.parent / "catalog.db.damaged-20261127T093005Z-2"
    assert not Path(f"{path}-shm").exists() or Path(f"{path}-shm").read_bytes() != b"index"


@pytest.mark.parametrize("opener", ["Catalog", "open_catalog"])
def test_damage_met_while_open_is_marked(tmp_path: Path, opener: str) -> None:
    """Damage a query meets: the owner is told once, and the next open sets the file aside.

    The catalog is larger than SQLite's page cache, so a full scan reads the damaged
    pages from the file.
    """
    path = tmp_path / "db" / "catalog.db"
    _filled_catalog(path, 40_000)
    calls: list[str] = []
    if opener == "Catalog":
        catalog = Catalog(path, on_damage=lambda: calls.append("damaged"))
    else:  # how Home Assistant opens it: the callback raises the repair issue
        catalog, _ = open_catalog(path, on_damage=lambda: calls.append("damaged"))
    damaged = _damage_pages(path)
    with pytest.raises(CatalogDamagedError):
        catalog.objects()
    with pytest.raises(CatalogDamagedError) as later:
        catalog.count()
    assert str(later.value) == "the catalog was found damaged"
    assert calls == ["damaged"]
    catalog.close()

    reopened, aside = open_catalog(path)
    with reopened:
        assert aside is not None
        assert aside.read_bytes() == damaged
        assert reopened.count() == 0
    assert sorted(p.name for p in path.parent.iterdir()) == ["catalog.db", aside.name]


def test_a_catalog_started_anew_still_reports_its_own_damage(tmp_path: Path) -> None:
    """After a damaged file is set aside, the new catalog tells its owner of damage too."""
    path = tmp_path / "db" / "catalog.db"
    _filled_catalog(path, 10)
    _wipe_header(path)
    calls: list[str] = []
    catalog, aside = open_catalog(path, on_damage=lambda: calls.append("damaged"))
    with catalog:
        assert aside is not None
        catalog.record_many(obj(f"k/{i:06d}", i) for i in range(40_000))
        catalog.checkpoint(pause=False)  # the pages in the file, not only in the WAL
        _damage_pages(path)
        with pytest.raises(CatalogDamagedError):
            catalog.objects()
    assert calls == ["damaged"]


def test_setting_aside_a_wal_that_could_not_be_held(tmp_path: Path) -> None:
    """No second link to the WAL (the copy failed too): the WAL itself goes with the file,
    and the shared-memory index (derived from it) is dropped."""
    path = tmp_path / "db" / "catalog.db"
    path.parent.mkdir()
    path.write_bytes(b"damaged")
    Path(f"{path}-wal").write_bytes(b"frames")
    Path(f"{path}-shm").write_bytes(b"index")
    when = datetime(2026, 11, 27, 9, 30, 5, tzinfo=UTC)

    aside = catalog_module._set_aside(path, None, when)

    assert aside == path.parent / "catalog.db.damaged-20261127T093005Z"
    assert sorted(p.name for p in path.parent.iterdir()) == [aside.name, f"{aside.name}-wal"]
    assert Path(f"{aside}-wal").read_bytes() == b"frames"
    assert aside.read_bytes() == b"damaged"


def test_a_catalog_that_cannot_be_set_aside_says_so(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    path.write_bytes(b"damaged")
    shm = Path(f"{path}-shm")
    shm.mkdir()  # unlink() of a directory fails, as a file another process locks would
    (shm / "in use").write_bytes(b"")
    with pytest.raises(CatalogError) as err:
        catalog_module._set_aside(path, None, datetime(2026, 11, 27, tzinfo=UTC))
    assert str(err.value).startswith("could not move the damaged catalog aside: [Errno ")
    assert path.read_bytes() == b"damaged"


@pytest.mark.parametrize("chunk", [1, 3, 10_000])
def test_reconcile_in_chunks_equals_a_python_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Applied a few keys per transaction, the outcome is that of one whole comparison.

    Catalog rows lie before, between and after the listed keys, and outside the
    prefix; every kind of difference appears.
    """
    monkeypatch.setattr(catalog_module, "RECONCILE_BATCH", 4)
    monkeypatch.setattr(catalog_module, "APPLY_CHUNK", chunk)
    rng = random.Random(chunk)
    keys = [f"ha/{i:03d}" for i in range(60)]
    held = {key: rng.randrange(1, 9) for key in keys if rng.random() < 0.6}
    outside = {"h": 1, "ha": 2, "hb/x": 3}
    listed = {key: held.get(key, 5) + (rng.random() < 0.3) for key in keys if rng.random() < 0.6}
    with Catalog(tmp_path / "catalog.db") as catalog:
        catalog.record_many(obj(key, size) for key, size in {**held, **outside}.items())
        result = catalog.reconcile(
            [obj(key, size) for key, size in reversed(listed.items())], prefix="ha/"
        )
        assert {o.key: o.size for o in catalog.objects()} == {**listed, **outside}
        assert aggregates_match_rows(catalog.path)
    assert result == ReconcileResult(
        added=len(listed.keys() - held.keys()),
        removed=len(held.keys() - listed.keys()),
        changed=sum(1 for key in listed.keys() & held.keys() if listed[key] != held[key]),
        objects=len(listed),
        bytes=sum(listed.values()),
    )


# -- what Home Assistant's side relies on (found unpinned by scripts/mutate) -------------


def test_checkpoint_folds_the_wal_and_pauses_automatic_checkpoints(catalog: Catalog) -> None:
    """While a backup copies the database file, only the WAL may change."""
    catalog.record(obj("a"))
    wal = catalog.path.with_name(catalog.path.name + "-wal")
    assert wal.stat().st_size > 0
    catalog.checkpoint(pause=True)
    assert wal.stat().st_size == 0
    assert catalog._conn is not None
    assert catalog._conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    catalog.checkpoint(pause=False)
    assert catalog._conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (1000,)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("s3_glacier_abc.db", True),
        ("s3_glacier_abc.db.damaged-20260101T000000Z", True),
        ("s3_glacier_abc.db-wal", False),
        ("s3_glacier_abc.db-shm", False),
        ("s3_glacier_abc.db-damaged", False),
        ("s3_glacier_abc.db-wal-held", False),
        ("s3_glacier_abc.db.damaged-20260101T000000Z-wal", False),
    ],
)
def test_is_database_file(name: str, expected: bool) -> None:
    assert is_database_file(Path(name)) is expected


def test_early_deletion_rules_in_sql_are_pricing_rules() -> None:
    """The SQL aggregates use pricing's minimum sizes, index overheads and minimum days."""
    with closing(sqlite3.connect(":memory:")) as conn:
        rows = conn.execute(catalog_module._early_rules_sql()).fetchall()
    assert rows == [
        ("STANDARD_IA", 1, 0, 30),
        ("ONEZONE_IA", 1, 0, 30),
        ("GLACIER_IR", 1, 0, 90),
        ("GLACIER", 0, 32 * KIB, 90),
        ("VAULT", 0, 32 * KIB, 90),
        ("DEEP_ARCHIVE", 0, 32 * KIB, 180),
    ]


def test_prefix_with_the_last_code_point(catalog: Catalog) -> None:
    """U+10FFFF has no successor: the range's upper bound comes from the characters before."""
    keys = ["a", "a\U0010ffff", "a\U0010ffff/1", "b", "\U0010ffffa", "\U0010ffffb"]
    catalog.record_many(obj(key) for key in keys)
    assert [o.key for o in catalog.objects("a\U0010ffff")] == ["a\U0010ffff", "a\U0010ffff/1"]
    assert [o.key for o in catalog.objects("\U0010ffffa")] == ["\U0010ffffa"]


# -- reconcile's transactions (found unpinned by scripts/mutate) ---------------------------


def test_a_row_sqlite_refuses_while_staging_changes_nothing(catalog: Catalog) -> None:
    """A listed row SQLite cannot store: the error is raised as it is, nothing changes,
    and the catalog takes writes again (the staging transaction was rolled back)."""
    catalog.record_many([obj("k/a", 1), obj("k/b", 2)])
    with pytest.raises(OverflowError, match="too large to convert to SQLite INTEGER"):
        catalog.reconcile([obj("k/a", 1), obj("k/c", 2**64)])
    assert {o.key: o.size for o in catalog.objects()} == {"k/a": 1, "k/b": 2}
    assert catalog._conn is not None
    assert not catalog._conn.in_transaction
    catalog.record(obj("k/d", 4))
    result = catalog.reconcile([obj("k/a", 1), obj("k/d", 4)])
    assert result == ReconcileResult(added=0, removed=1, changed=0, objects=2, bytes=5)


def test_reconcile_commits_one_transaction_per_chunk(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other threads wait for one chunk of listed keys, not for the whole reconcile."""
    monkeypatch.setattr(catalog_module, "APPLY_CHUNK", 2)
    catalog.record_many(obj(f"k/{i}", i) for i in range(6))
    statements: list[str] = []
    assert catalog._conn is not None
    catalog._conn.set_trace_callback(statements.append)
    result = catalog.reconcile([obj(f"k/{i}", i) for i in range(5)])
    catalog._conn.set_trace_callback(None)
    assert statements.count("BEGIN IMMEDIATE") == 3  # [k/0, k/2), [k/2, k/4), [k/4, end)
    assert statements.count("COMMIT") == statements.count("BEGIN") + 3
    assert result == ReconcileResult(added=0, removed=1, changed=0, objects=5, bytes=10)


class _LockWithPause:
    """The catalog's lock, running ``pause`` once right after the next release.

    Stands for another thread's writes landing between two of reconcile's transactions.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pause: Callable[[], None] | None = None

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
        pause, self.pause = self.pause, None
        if pause is not None:
            pause()


def test_writes_between_two_chunks_are_kept(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys written after the reconcile started are left as written (and not counted),
    also when they land between the transactions of two chunks, before or after theirs."""
    monkeypatch.setattr(catalog_module, "APPLY_CHUNK", 1)
    catalog.record_many([obj("k/0", 1), obj("k/1", 1), obj("k/2", 2)])
    lock = _LockWithPause()
    catalog._lock = lock  # type: ignore[assignment]
    statements: list[str] = []

    def after_first_chunk(statement: str) -> None:
        statements.append(statement)
        if statements.count("BEGIN IMMEDIATE") == 1 and statement == "COMMIT":
            lock.pause = write_meanwhile

    def write_meanwhile() -> None:
        catalog.record_many([obj("k/0", 50), obj("k/2", 9), obj("k/3", 7)])

    assert catalog._conn is not None
    catalog._conn.set_trace_callback(after_first_chunk)
    result = catalog.reconcile([obj("k/0", 1), obj("k/1", 1), obj("k/2", 3), obj("k/3", 4)])
    catalog._conn.set_trace_callback(None)

    assert statements.count("BEGIN IMMEDIATE") == 5  # four chunks, then the writer's
    assert {o.key: o.size for o in catalog.objects()} == {"k/0": 50, "k/1": 1, "k/2": 9, "k/3": 7}
    # Each chunk counts its range when it is applied: k/0 before the writer's 50 bytes.
    assert result == ReconcileResult(added=0, removed=0, changed=0, objects=4, bytes=18)
    assert aggregates_match_rows(catalog.path)


def test_reconcile_stages_the_listing_while_it_streams(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory holds one batch: each is staged before the next is read from the listing."""
    monkeypatch.setattr(catalog_module, "RECONCILE_BATCH", 100)
    statements: list[str] = []
    staged_when: list[int] = []

    def listing() -> Iterator[ArchivedObject]:
        for i in range(1_000):
            if i % 250 == 0:
                staged_when.append(statements.count("BEGIN"))
            yield obj(f"k/{i:04d}", i)

    assert catalog._conn is not None
    catalog._conn.set_trace_callback(statements.append)
    catalog.reconcile(listing())
    catalog._conn.set_trace_callback(None)
    assert staged_when == [0, 2, 5, 7]
    assert statements.count("BEGIN") == 10


def test_reconcile_leaves_no_staging_tables(catalog: Catalog) -> None:
    """The staged listing is dropped once applied: its pages do not stay with the connection."""
    catalog.record(obj("k/a"))
    catalog.reconcile([obj("k/a"), obj("k/b")])
    assert catalog._conn is not None
    assert catalog._conn.execute("SELECT name FROM temp.sqlite_master").fetchall() == []


def test_a_catalog_closed_during_a_reconcile_raises_catalog_error(catalog: Catalog) -> None:
    """Home Assistant stopping while a refresh lists: the reconcile ends with CatalogError."""
    catalog.record(obj("k/a"))

    def listing() -> Iterator[ArchivedObject]:
        yield obj("k/a")
        catalog.close()
        yield obj("k/b")

    with pytest.raises(CatalogError) as err:
        catalog.reconcile(listing())
    assert (type(err.value), str(err.value)) == (CatalogError, "the catalog is closed")
    with Catalog(catalog.path) as reopened:
        assert [o.key for o in reopened.objects()] == ["k/a"]


# -- opening, damage and setting aside (found unpinned by scripts/mutate) --------------------


class _NoOffset(tzinfo):
    """A time zone that does not know its offset: such a datetime is not aware either."""

    def utcoffset(self, _: datetime | None) -> None:
        return None


def test_a_time_zone_without_an_offset_is_refused(catalog: Catalog) -> None:
    with pytest.raises(ValueError) as err:
        catalog.record(obj("a", last_modified=datetime(2026, 1, 1, tzinfo=_NoOffset())))
    assert str(err.value) == "datetimes must be timezone-aware"
    assert catalog.count() == 0


def test_a_negative_limit_is_refused(catalog: Catalog) -> None:
    with pytest.raises(ValueError) as err:
        catalog.objects(limit=-1)
    assert str(err.value) == "limit must not be negative"


def test_a_catalog_in_a_new_directory(tmp_path: Path) -> None:
    """The first start creates the directories the catalog lives in."""
    with Catalog(tmp_path / "a" / "b" / "catalog.db") as catalog:
        catalog.record(obj("k"))
        assert catalog.count() == 1


def test_damage_marked_before_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    Catalog(path).close()
    catalog_module.damage_mark(path).touch()
    with pytest.raises(CatalogDamagedError) as err:
        Catalog(path)
    assert str(err.value) == "damage was seen while the catalog was open"


def test_the_aside_name_is_utc_whatever_the_local_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "db" / "catalog.db"
    _filled_catalog(path)
    _wipe_header(path)
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        catalog, aside = open_catalog(path, now=datetime(2026, 11, 27, 9, 30, 5, tzinfo=UTC))
        catalog.close()
    finally:
        monkeypatch.undo()
        time.tzset()
    assert aside == path.parent / "catalog.db.damaged-20261127T093005Z"


@pytest.mark.parametrize("hard_links", [True, False], ids=["link", "no-hard-links"])
def test_the_wal_of_a_damaged_catalog_goes_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hard_links: bool
) -> None:
    """Its last commits are kept beside the damaged file, never replayed into the new one."""
    path = tmp_path / "db" / "catalog.db"
    _filled_catalog(path)
    _wipe_header(path)
    wal = b"frames of the last commits"
    Path(f"{path}-wal").write_bytes(wal)
    if not hard_links:
        monkeypatch.setattr(os, "link", _no_hard_links)
    wal_of_new_file: list[bytes | None] = []
    real_catalog = catalog_module.Catalog

    def catalog_seeing_the_wal(*args: object) -> Catalog:
        left = Path(f"{path}-wal")
        wal_of_new_file.append(left.read_bytes() if left.exists() else None)
        return real_catalog(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(catalog_module, "Catalog", catalog_seeing_the_wal)
    catalog, aside = open_catalog(path, now=datetime(2026, 11, 27, 9, 30, 5, tzinfo=UTC))
    catalog.close()
    assert aside is not None
    assert Path(f"{aside}-wal").read_bytes() == wal
    assert wal_of_new_file == [wal, None]  # the damaged file's check, then the new file's


def _no_hard_links(src: object, dst: object) -> None:
    raise OSError(errno.EPERM, "Operation not permitted")
