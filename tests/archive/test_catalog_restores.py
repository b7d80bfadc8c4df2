"""The catalog's schema 2: archive tiers, restores asked again, restored copies."""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
import sqlite3

import pytest

from custom_components.s3_glacier.archive import catalog as catalog_module
from custom_components.s3_glacier.archive.catalog import SCHEMA_VERSION, Catalog
from custom_components.s3_glacier.archive.models import (
    GIB,
    ArchivedObject,
    ArchiveStatus,
    PendingRestore,
    RestoreState,
    RestoreTier,
    StorageClass,
)
from custom_components.s3_glacier.archive.pricing import restored_copy_bytes

NOW = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """No Home Assistant here."""


def _us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _version_1_file(path: Path) -> None:
    """A catalog as version 1 of the integration wrote it: one object, one restore."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for statement in catalog_module._SCHEMA_V1:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO objects VALUES (?, ?, ?, ?, NULL, ?, NULL, NULL, NULL, ?, NULL)",
            ("old/a", 1000, "GLACIER", _us(NOW), "ab" * 32, "none"),
        )
        conn.execute(
            "INSERT INTO pending_restores VALUES (?, ?, ?, ?, ?, NULL, 0, NULL)",
            ("old/a", "Bulk", 3, _us(NOW), _us(NOW + timedelta(hours=12))),
        )


def test_version_1_catalog_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    _version_1_file(path)
    with Catalog(path) as catalog:
        old = catalog.get("old/a")
        assert old is not None
        assert (old.size, old.storage_class, old.archive_status) == (
            1000,
            StorageClass.GLACIER,
            None,
        )
        [pending] = catalog.pending_restores()
        assert (pending.key, pending.days, pending.requested_again) == ("old/a", 3, False)
        assert [u.objects for u in catalog.usage(NOW)] == [1]
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert SCHEMA_VERSION == 2


def test_archive_status_and_requested_again_round_trip(tmp_path: Path) -> None:
    with Catalog(tmp_path / "catalog.db") as catalog:
        obj = ArchivedObject(
            key="it/a",
            size=10,
            storage_class=StorageClass.INTELLIGENT_TIERING,
            last_modified=NOW,
            archive_status=ArchiveStatus.DEEP_ARCHIVE_ACCESS,
        )
        catalog.record(obj)
        assert catalog.get("it/a") == obj
        assert catalog.objects("it/") == [obj]
        assert catalog.last_archived() == obj
        pending = PendingRestore(
            key="it/a",
            tier=RestoreTier.BULK,
            days=1,
            requested_at=NOW,
            ready_by=NOW + timedelta(hours=48),
            requested_again=True,
        )
        catalog.add_pending_restore(pending)
        assert catalog.pending_restores() == [pending]


def test_reconcile_keeps_the_archive_status(tmp_path: Path) -> None:
    """Listings do not report archive tiers: a reconcile leaves what a HEAD recorded."""
    obj = ArchivedObject(
        key="it/a",
        size=10,
        storage_class=StorageClass.INTELLIGENT_TIERING,
        last_modified=NOW,
        etag="e",
        archive_status=ArchiveStatus.ARCHIVE_ACCESS,
    )
    with Catalog(tmp_path / "catalog.db") as catalog:
        catalog.record(obj)
        listed = ArchivedObject(
            key="it/a", size=10, storage_class=StorageClass.INTELLIGENT_TIERING,
            last_modified=NOW, etag="e",
        )  # fmt: skip
        catalog.reconcile([listed])
        stored = catalog.get("it/a")
        assert stored is not None
        assert stored.archive_status is ArchiveStatus.ARCHIVE_ACCESS


def test_restored_copies_agree_with_pricing(tmp_path: Path) -> None:
    def obj(
        key: str, sc: StorageClass, state: RestoreState, expiry: datetime | None
    ) -> ArchivedObject:
        return ArchivedObject(
            key=key,
            size=GIB + len(key),
            storage_class=sc,
            last_modified=NOW - timedelta(days=300),
            restore_state=state,
            restore_expiry=expiry,
        )

    objects = [
        obj("a", StorageClass.GLACIER, RestoreState.RESTORED, NOW + timedelta(days=2)),
        obj("bb", StorageClass.GLACIER, RestoreState.RESTORED, NOW + timedelta(seconds=1)),
        obj("ccc", StorageClass.DEEP_ARCHIVE, RestoreState.RESTORED, None),
        obj("dddd", StorageClass.DEEP_ARCHIVE, RestoreState.RESTORED, NOW),
        obj("eeeee", StorageClass.GLACIER, RestoreState.IN_PROGRESS, None),
        obj("ffffff", StorageClass.GLACIER, RestoreState.NONE, None),
        obj("g", StorageClass.STANDARD_IA, RestoreState.RESTORED, NOW + timedelta(days=1)),
    ]
    with Catalog(tmp_path / "catalog.db") as catalog:
        catalog.record_many(objects)
        copies = catalog.restored_copies(NOW)
        assert copies == restored_copy_bytes(objects, NOW)
        assert copies == {
            StorageClass.GLACIER: 2 * GIB + 3,
            StorageClass.DEEP_ARCHIVE: GIB + 3,
        }
        assert catalog.restored_copies(NOW + timedelta(days=3)) == {
            StorageClass.DEEP_ARCHIVE: GIB + 3
        }


def test_restored_copies_use_the_partial_index(tmp_path: Path) -> None:
    """Pricing the copies reads only restored rows, whatever the catalog's size."""
    with Catalog(tmp_path / "catalog.db") as catalog:
        catalog.record(
            ArchivedObject(key="a", size=1, storage_class=StorageClass.GLACIER, last_modified=NOW)
        )
    with closing(sqlite3.connect(tmp_path / "catalog.db")) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT storage_class, sum(size) FROM objects"
            " WHERE restore_state = 'restored'"
            " AND (restore_expiry_us IS NULL OR restore_expiry_us > 0)"
            " AND storage_class IN ('GLACIER', 'DEEP_ARCHIVE') GROUP BY storage_class"
        ).fetchall()
    assert any("objects_restored" in row[-1] for row in plan), plan
