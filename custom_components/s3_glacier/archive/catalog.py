"""The durable record of what was archived: one SQLite file (WAL) per config entry.

Thread safety: one connection, opened with ``check_same_thread=False``, and a lock
held for each operation. SQLite admits one writer at a time anyway and every
operation here takes milliseconds, so a connection per thread would buy no
parallelism; it would cost connections that can never be closed, because the
executor's threads do not say when they end and ``close()`` cannot reach another
thread's connection.

Crash safety: every write is one ``BEGIN IMMEDIATE`` … ``COMMIT`` transaction, and
``synchronous=FULL`` makes a commit survive a power cut, not only a crash: a lost
row could be the only handle to a vault archive.

Speed at a million rows: triggers keep two small aggregate tables up to date in the
same transaction as each write. ``class_totals`` holds one row per storage class;
``class_days`` one row per (UTC day of ``last_modified``, class). ``usage()`` reads
the first and, for the early deletion exposure, the at most 180 most recent days of
the second, so its cost does not grow with the number of objects.

Reconcile without holding the lock: the listing (a million objects is a thousand
requests) streams into a staging table in batches, each under the lock for a few
milliseconds, so memory stays flat and actions keep recording meanwhile. Keys
recorded or removed after the listing started are left as they are: the listing may
predate them.

Damage: ``open_catalog`` runs a quick integrity check; a damaged file (or one that is
not a database) is moved aside, kept for manual recovery, and an empty catalog takes
its place. Damage met later marks the file (a ``-damaged`` file beside it), so the
next open sets it aside even where the quick check would not see it.

Times are stored as integer microseconds since the epoch (UTC), so aware datetimes
round-trip exactly.
"""

# Every SQL string in this module is assembled from the module's own constants;
# values always travel as bound parameters.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
import datetime as dt
from decimal import Decimal
from itertools import islice
import logging
import os
from pathlib import Path
import shutil
import sqlite3
import threading
from types import TracebackType
from typing import Any, Self

from .errors import ArchiveError
from .models import (
    ArchivedObject,
    ArchiveStatus,
    PendingRestore,
    RestoreState,
    RestoreTier,
    StorageClass,
)
from .pricing import (
    CLASS_RATE_OVERHEAD,
    MIN_BILLABLE_SIZE,
    MIN_DURATION_DAYS,
    MONITORING_MIN_SIZE,
    ClassUsage,
    utc_day,
)

_LOGGER = logging.getLogger(__name__)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_US_PER_DAY = 86_400_000_000

# The aggregate tables keep the sum of max(size, 128 KiB) and the count of objects
# of at least 128 KiB: the only size thresholds in pricing's rules. The threshold
# is part of the stored schema; changing it needs a migration that rebuilds the
# aggregates, hence the import-time check.
SIZE_THRESHOLD = 128 * 1024
if MONITORING_MIN_SIZE != SIZE_THRESHOLD or any(
    size != SIZE_THRESHOLD for size in MIN_BILLABLE_SIZE.values()
):
    raise RuntimeError("pricing's size thresholds no longer match the catalog schema")

_OBJECT_COLUMNS = (
    "key, size, storage_class, last_modified_us, etag, sha256, archive_id, description,"
    " tree_hash, restore_state, restore_expiry_us"
)
_OBJECT_PLACEHOLDERS = ", ".join("?" * 11)
# What a recorded row holds beyond what a listing can tell (schema 2): listings do not
# report INTELLIGENT_TIERING's archive tier, so reconcile leaves it as recorded.
_STORED_COLUMNS = f"{_OBJECT_COLUMNS}, archive_status"
# An upsert rather than INSERT OR REPLACE: REPLACE deletes without firing the
# delete trigger (recursive triggers are off), which would skew the aggregates.
_UPSERT_OBJECT = (
    f"INSERT INTO objects ({_STORED_COLUMNS}) VALUES ({_OBJECT_PLACEHOLDERS}, ?)"
    " ON CONFLICT (key) DO UPDATE SET"
    " size = excluded.size, storage_class = excluded.storage_class,"
    " last_modified_us = excluded.last_modified_us, etag = excluded.etag,"
    " sha256 = excluded.sha256, archive_id = excluded.archive_id,"
    " description = excluded.description, tree_hash = excluded.tree_hash,"
    " restore_state = excluded.restore_state,"
    " restore_expiry_us = excluded.restore_expiry_us,"
    " archive_status = excluded.archive_status"
)
_PENDING_COLUMNS = (
    "key, tier, days, requested_at_us, ready_by_us, destination, overwrite, job_id, requested_again"
)


# The aggregate triggers below spell out SIZE_THRESHOLD (131072) and the microseconds
# of a day (86400000000). SQLite's integer division truncates toward zero where
# Python floors: the two differ only before 1970, far outside any minimum duration,
# and insert and delete use the same expression, so the day buckets stay consistent.
_SCHEMA_V1: tuple[str, ...] = (
    """CREATE TABLE objects (
        key TEXT PRIMARY KEY NOT NULL,
        size INTEGER NOT NULL CHECK (size >= 0),
        storage_class TEXT NOT NULL,
        last_modified_us INTEGER NOT NULL,
        etag TEXT,
        sha256 TEXT,
        archive_id TEXT,
        description TEXT,
        tree_hash TEXT,
        restore_state TEXT NOT NULL,
        restore_expiry_us INTEGER
    )""",
    # last_archived(); the implicit rowid suffix settles ties.
    "CREATE INDEX objects_by_last_modified ON objects (last_modified_us)",
    """CREATE TABLE class_totals (
        storage_class TEXT PRIMARY KEY NOT NULL,
        objects INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        min128_bytes INTEGER NOT NULL,
        objects_from_128k INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE class_days (
        day INTEGER NOT NULL,
        storage_class TEXT NOT NULL,
        objects INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        min128_bytes INTEGER NOT NULL,
        PRIMARY KEY (day, storage_class)
    ) WITHOUT ROWID""",
    """CREATE TRIGGER objects_insert AFTER INSERT ON objects BEGIN
        INSERT INTO class_totals
            (storage_class, objects, bytes, min128_bytes, objects_from_128k)
        VALUES (NEW.storage_class, 1, NEW.size, max(NEW.size, 131072), NEW.size >= 131072)
        ON CONFLICT (storage_class) DO UPDATE SET
            objects = objects + 1,
            bytes = bytes + excluded.bytes,
            min128_bytes = min128_bytes + excluded.min128_bytes,
            objects_from_128k = objects_from_128k + excluded.objects_from_128k;
        INSERT INTO class_days (day, storage_class, objects, bytes, min128_bytes)
        VALUES (NEW.last_modified_us / 86400000000, NEW.storage_class, 1, NEW.size,
                max(NEW.size, 131072))
        ON CONFLICT (day, storage_class) DO UPDATE SET
            objects = objects + 1,
            bytes = bytes + excluded.bytes,
            min128_bytes = min128_bytes + excluded.min128_bytes;
    END""",
    """CREATE TRIGGER objects_delete AFTER DELETE ON objects BEGIN
        UPDATE class_totals SET
            objects = objects - 1,
            bytes = bytes - OLD.size,
            min128_bytes = min128_bytes - max(OLD.size, 131072),
            objects_from_128k = objects_from_128k - (OLD.size >= 131072)
        WHERE storage_class = OLD.storage_class;
        DELETE FROM class_totals WHERE storage_class = OLD.storage_class AND objects = 0;
        UPDATE class_days SET
            objects = objects - 1,
            bytes = bytes - OLD.size,
            min128_bytes = min128_bytes - max(OLD.size, 131072)
        WHERE day = OLD.last_modified_us / 86400000000 AND storage_class = OLD.storage_class;
        DELETE FROM class_days
        WHERE day = OLD.last_modified_us / 86400000000 AND storage_class = OLD.storage_class
            AND objects = 0;
    END""",
    # An update moves the row between buckets: out as OLD, in as NEW.
    """CREATE TRIGGER objects_update
    AFTER UPDATE OF size, storage_class, last_modified_us ON objects
    WHEN OLD.size IS NOT NEW.size OR OLD.storage_class IS NOT NEW.storage_class
        OR OLD.last_modified_us / 86400000000 IS NOT NEW.last_modified_us / 86400000000
    BEGIN
        UPDATE class_totals SET
            objects = objects - 1,
            bytes = bytes - OLD.size,
            min128_bytes = min128_bytes - max(OLD.size, 131072),
            objects_from_128k = objects_from_128k - (OLD.size >= 131072)
        WHERE storage_class = OLD.storage_class;
        DELETE FROM class_totals WHERE storage_class = OLD.storage_class AND objects = 0;
        UPDATE class_days SET
            objects = objects - 1,
            bytes = bytes - OLD.size,
            min128_bytes = min128_bytes - max(OLD.size, 131072)
        WHERE day = OLD.last_modified_us / 86400000000 AND storage_class = OLD.storage_class;
        DELETE FROM class_days
        WHERE day = OLD.last_modified_us / 86400000000 AND storage_class = OLD.storage_class
            AND objects = 0;
        INSERT INTO class_totals
            (storage_class, objects, bytes, min128_bytes, objects_from_128k)
        VALUES (NEW.storage_class, 1, NEW.size, max(NEW.size, 131072), NEW.size >= 131072)
        ON CONFLICT (storage_class) DO UPDATE SET
            objects = objects + 1,
            bytes = bytes + excluded.bytes,
            min128_bytes = min128_bytes + excluded.min128_bytes,
            objects_from_128k = objects_from_128k + excluded.objects_from_128k;
        INSERT INTO class_days (day, storage_class, objects, bytes, min128_bytes)
        VALUES (NEW.last_modified_us / 86400000000, NEW.storage_class, 1, NEW.size,
                max(NEW.size, 131072))
        ON CONFLICT (day, storage_class) DO UPDATE SET
            objects = objects + 1,
            bytes = bytes + excluded.bytes,
            min128_bytes = min128_bytes + excluded.min128_bytes;
    END""",
    """CREATE TABLE pending_restores (
        key TEXT PRIMARY KEY NOT NULL,
        tier TEXT NOT NULL,
        days INTEGER NOT NULL,
        requested_at_us INTEGER NOT NULL,
        ready_by_us INTEGER NOT NULL,
        destination TEXT,
        overwrite INTEGER NOT NULL,
        job_id TEXT
    )""",
    """CREATE TABLE meta (
        name TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) WITHOUT ROWID""",
)

# Schema 2: INTELLIGENT_TIERING's archive tier of an object (NULL: none or unknown),
# whether a pending restore was already asked again after its copy expired, and an
# index over the restored copies (few rows) so that pricing them reads no other row.
_SCHEMA_V2: tuple[str, ...] = (
    "ALTER TABLE objects ADD COLUMN archive_status TEXT",
    "ALTER TABLE pending_restores ADD COLUMN requested_again INTEGER NOT NULL DEFAULT 0",
    "CREATE INDEX objects_restored ON objects (restore_expiry_us, storage_class, size)"
    " WHERE restore_state = 'restored'",
)

# _MIGRATIONS[n] takes a catalog from user_version n to n + 1 (0: a new file).
_MIGRATIONS: tuple[tuple[str, ...], ...] = (_SCHEMA_V1, _SCHEMA_V2)
SCHEMA_VERSION = len(_MIGRATIONS)

# Listing rows staged for reconcile; same columns as objects.
_CREATE_LISTING = """CREATE TEMP TABLE IF NOT EXISTS listing (
    key TEXT PRIMARY KEY NOT NULL,
    size INTEGER NOT NULL,
    storage_class TEXT NOT NULL,
    last_modified_us INTEGER NOT NULL,
    etag TEXT,
    sha256 TEXT,
    archive_id TEXT,
    description TEXT,
    tree_hash TEXT,
    restore_state TEXT NOT NULL,
    restore_expiry_us INTEGER
)"""

# Keys recorded or removed while a listing streamed: the reconcile leaves them alone.
_CREATE_TOUCHED = "CREATE TEMP TABLE IF NOT EXISTS touched (key TEXT PRIMARY KEY NOT NULL)"
_STAGE_LISTING = (
    f"INSERT OR REPLACE INTO temp.listing ({_OBJECT_COLUMNS}) VALUES ({_OBJECT_PLACEHOLDERS})"
)
# Listed objects staged per lock hold: memory holds one batch, and the lock is taken
# for a few milliseconds at a time.
RECONCILE_BATCH = 1000
# Listed keys applied per transaction (about a tenth of a second each on a small
# machine): other threads wait for one chunk, not for the whole reconcile.
APPLY_CHUNK = 10_000

# SQLite's primary result codes for a damaged file: "database disk image is
# malformed" and "file is not a database".
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
# Beside the catalog: damage was seen while it was open (see ``open_catalog``).
_DAMAGE_MARK = "-damaged"
# Beside the catalog while it is checked: a second link to its WAL (see _wal_held).
_HELD_WAL = "-wal-held"

# The object's bytes changed: our own checksum no longer describes them.
_CONTENT_CHANGED = (
    "(o.size <> l.size OR (o.etag IS NOT NULL AND l.etag IS NOT NULL AND o.etag <> l.etag))"
)
# A change worth counting. A listing that only fills in what we did not know (an
# etag, a vault description) or refreshes last_modified updates silently.
_COUNTED_CHANGE = (
    f"({_CONTENT_CHANGED} OR o.storage_class <> l.storage_class"
    " OR o.restore_state <> l.restore_state"
    " OR o.restore_expiry_us IS NOT l.restore_expiry_us)"
)
_RECONCILE_UPDATE = f"""
    UPDATE objects SET
        size = n.size, storage_class = n.storage_class,
        last_modified_us = n.last_modified_us, etag = n.etag, sha256 = n.sha256,
        archive_id = n.archive_id, description = n.description, tree_hash = n.tree_hash,
        restore_state = n.restore_state, restore_expiry_us = n.restore_expiry_us
    FROM (
        SELECT l.key, l.size, l.storage_class, l.last_modified_us,
            coalesce(l.etag, o.etag) AS etag,
            CASE WHEN {_CONTENT_CHANGED} THEN l.sha256
                 ELSE coalesce(l.sha256, o.sha256) END AS sha256,
            coalesce(l.archive_id, o.archive_id) AS archive_id,
            coalesce(l.description, o.description) AS description,
            coalesce(l.tree_hash, o.tree_hash) AS tree_hash,
            l.restore_state, l.restore_expiry_us
        FROM temp.listing AS l JOIN objects AS o ON o.key = l.key
        WHERE {{chunk}}
    ) AS n
    WHERE objects.key = n.key
      AND (objects.size, objects.storage_class, objects.last_modified_us, objects.etag,
           objects.sha256, objects.archive_id, objects.description, objects.tree_hash,
           objects.restore_state, objects.restore_expiry_us)
       IS NOT (n.size, n.storage_class, n.last_modified_us, n.etag, n.sha256,
               n.archive_id, n.description, n.tree_hash, n.restore_state,
               n.restore_expiry_us)
"""


def _early_rules_sql() -> str:
    """Return the early deletion rules of ``pricing`` as an SQL VALUES list."""
    rows = ", ".join(
        f"('{c.value}', {int(c in MIN_BILLABLE_SIZE)}, {CLASS_RATE_OVERHEAD.get(c, 0)}, {days})"
        for c, days in MIN_DURATION_DAYS.items()
    )
    return f"VALUES {rows}"


# Sum of billable bytes * remaining days per class, over the day buckets still inside
# their class's minimum duration. Mirrors pricing.remaining_minimum_days.
_EARLY_BYTE_DAYS = f"""
    WITH rules (storage_class, has_min_size, overhead, min_days) AS ({_early_rules_sql()})
    SELECT d.storage_class,
        sum((CASE WHEN r.has_min_size THEN d.min128_bytes ELSE d.bytes END
             + r.overhead * d.objects) * (r.min_days - max(0, :today - d.day)))
    FROM class_days AS d JOIN rules AS r ON r.storage_class = d.storage_class
    WHERE d.day > :today - :longest AND :today - d.day < r.min_days
    GROUP BY d.storage_class
"""
_LONGEST_MIN_DURATION = max(MIN_DURATION_DAYS.values())


class CatalogError(ArchiveError):
    """The catalog file cannot be opened, read or written."""

    translation_key = "catalog_error"


class CatalogDamagedError(CatalogError):
    """The catalog file is damaged (or is not a database): it cannot be trusted."""


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    """What a reconcile did, and what the reconciled prefix now holds."""

    added: int
    removed: int
    changed: int
    objects: int
    bytes: int


class Catalog:
    """The archive's catalog in one SQLite file. Every method is thread-safe."""

    def __init__(self, path: Path | str, on_damage: Callable[[], None] | None = None) -> None:
        """Open (creating or migrating as needed) the catalog at ``path``.

        Raises ``CatalogDamagedError`` if SQLite's quick check finds the file damaged,
        or damage was seen while it was last open. ``on_damage`` is called once, from
        the thread that met it, when damage shows up later.
        """
        self._path = Path(path)
        self._lock = threading.Lock()
        # One reconcile at a time: they share the staging tables.
        self._reconcile_lock = threading.Lock()
        # Keys recorded or removed since the running reconcile started (None: none runs).
        self._touched: set[str] | None = None
        self._on_damage = on_damage
        self._damage_noted = False
        if damage_mark(self._path).exists():
            raise CatalogDamagedError("damage was seen while the catalog was open")
        self._conn: sqlite3.Connection | None = _open(self._path)

    @property
    def path(self) -> Path:
        """The catalog file."""
        return self._path

    def close(self) -> None:
        """Close the file; later calls raise ``CatalogError``. Closing twice is fine."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        """Use the catalog in a ``with`` block that closes it."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the catalog."""
        self.close()

    # Objects

    def record(self, obj: ArchivedObject) -> None:
        """Insert the object, or replace every field of the one with its key."""
        self.record_many((obj,))

    def record_many(self, objs: Iterable[ArchivedObject]) -> None:
        """Record many objects (insert or replace, as ``record``) in one transaction.

        The iterable is consumed inside the transaction, under the lock: it must not
        call back into the catalog.
        """
        with self._write() as conn:
            conn.executemany(_UPSERT_OBJECT, map(self._touch, map(_stored_row, objs)))

    def remove(self, key: str) -> bool:
        """Forget the object; return whether it was there."""
        with self._write() as conn:
            self._touch((key,))
            return conn.execute("DELETE FROM objects WHERE key = ?", (key,)).rowcount > 0

    def _touch(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """Note the key of a row being written, for a reconcile under way (lock held)."""
        if self._touched is not None:
            self._touched.add(row[0])
        return row

    def get(self, key: str) -> ArchivedObject | None:
        """Return the object recorded under ``key``, if any."""
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_STORED_COLUMNS} FROM objects WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else _object_from_row(row)

    def objects(self, prefix: str | None = None, limit: int | None = None) -> list[ArchivedObject]:
        """Return the objects whose key starts with ``prefix`` (no wildcards), by key."""
        if limit is not None and limit < 0:
            raise ValueError("limit must not be negative")
        where, params = _prefix_range(prefix or "")
        sql = f"SELECT {_STORED_COLUMNS} FROM objects WHERE {where} ORDER BY key LIMIT ?"
        with self._read() as conn:
            rows = conn.execute(sql, (*params, -1 if limit is None else limit)).fetchall()
        return [_object_from_row(row) for row in rows]

    def count(self) -> int:
        """Return the number of objects recorded."""
        with self._read() as conn:
            (total,) = conn.execute("SELECT coalesce(sum(objects), 0) FROM class_totals").fetchone()
        return int(total)

    def last_archived(self) -> ArchivedObject | None:
        """Return the most recently modified object (the latest recorded on a tie)."""
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_STORED_COLUMNS} FROM objects"
                " ORDER BY last_modified_us DESC, rowid DESC LIMIT 1"
            ).fetchone()
        return None if row is None else _object_from_row(row)

    def usage(self, now: dt.datetime) -> list[ClassUsage]:
        """Return one ``ClassUsage`` per storage class held, in class order, as of ``now``.

        Read from the aggregate tables: the cost does not depend on the number of
        objects. Equal to ``pricing.summarize`` over every recorded object.
        """
        today = utc_day(now)
        with self._read() as conn:
            conn.execute("BEGIN")  # one snapshot for both queries
            try:
                totals = conn.execute(
                    "SELECT storage_class, objects, bytes, min128_bytes, objects_from_128k"
                    " FROM class_totals"
                ).fetchall()
                early = dict(
                    conn.execute(
                        _EARLY_BYTE_DAYS, {"today": today, "longest": _LONGEST_MIN_DURATION}
                    ).fetchall()
                )
            finally:
                conn.execute("COMMIT")
        usages = [
            _class_usage(StorageClass(name), objects, size, min128, over, early.get(name, 0))
            for name, objects, size, min128, over in totals
        ]
        order = list(StorageClass)
        return sorted(usages, key=lambda u: order.index(u.storage_class))

    def restored_copies(self, now: dt.datetime) -> dict[StorageClass, int]:
        """Return the bytes of restored GLACIER/DEEP_ARCHIVE copies alive at ``now``, by class.

        A copy whose expiry is unknown counts until a listing or check says otherwise.
        Served by the ``objects_restored`` partial index: only restored rows are read.
        """
        with self._read() as conn:
            rows = conn.execute(
                "SELECT storage_class, sum(size) FROM objects"
                " WHERE restore_state = 'restored'"
                " AND (restore_expiry_us IS NULL OR restore_expiry_us > ?)"
                " AND storage_class IN (?, ?) GROUP BY storage_class",
                (_to_us(now), StorageClass.GLACIER.value, StorageClass.DEEP_ARCHIVE.value),
            ).fetchall()
        return {StorageClass(name): int(size) for name, size in rows}

    def reconcile(
        self,
        listed: Iterable[ArchivedObject],
        prefix: str = "",
        keep_since: dt.datetime | None = None,
    ) -> ReconcileResult:
        """Make the catalog under ``prefix`` match a full listing of it.

        Rows not listed are removed, new ones added, and listed ones whose size,
        class, etag or restore state differ are updated and counted as changed. Our
        sha256 is kept while the content is unchanged (same size, and same etag where
        both sides know one), as listings carry none. ``last_modified``, and fields
        the catalog lacked, are refreshed without counting as a change.

        The listing is consumed in batches of ``RECONCILE_BATCH`` into a staging
        table, without holding the lock in between: it may take as long as it needs
        (and call into the catalog), and other threads keep reading and recording.
        Keys recorded or removed after this call started are left as they are, as the
        listing may predate them. The changes are then applied in transactions of
        ``APPLY_CHUNK`` listed keys, so that others wait for one chunk at most.

        Raises ``ValueError`` (and changes nothing) if a listed key lies outside
        ``prefix``; an error raised by the listing changes nothing either. Rows last
        modified at or after ``keep_since`` are never removed: a Glacier vault's
        inventory may not show recent archives yet. ``objects`` and ``bytes`` of the
        result count what the catalog holds under ``prefix`` after.
        """
        keep_us = None if keep_since is None else _to_us(keep_since)
        with self._reconcile_lock:
            with self._read() as conn:
                # Dropped first: what a reconcile cut short left staged is not listed.
                conn.execute("DROP TABLE IF EXISTS temp.listing")
                conn.execute("DROP TABLE IF EXISTS temp.touched")
                conn.execute(_CREATE_LISTING)
                conn.execute(_CREATE_TOUCHED)
                self._touched = set()
            try:
                rows = map(_object_row, listed)
                while batch := list(islice(rows, RECONCILE_BATCH)):
                    _check_prefix(batch, prefix)
                    self._stage(batch)
                return self._apply_listing(prefix, keep_us)
            finally:
                self._end_reconcile()

    def _stage(self, rows: list[tuple[Any, ...]]) -> None:
        """Add listed rows to the staging table (the temporary database: no fsync)."""
        with self._read() as conn:
            conn.execute("BEGIN")
            try:
                conn.executemany(_STAGE_LISTING, rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _apply_listing(self, prefix: str, keep_us: int | None) -> ReconcileResult:
        """Apply the staged listing to ``objects``, one chunk of keys per transaction.

        The chunks tile the prefix in key order: each covers the catalog's rows from
        its first listed key to the next chunk's, so a row between two listed keys
        is judged by exactly one chunk. A crash between chunks leaves the catalog
        partly reconciled, which the next reconcile completes.
        """
        total = [0, 0, 0, 0, 0]
        # One range per query: SQLite's index search takes a single pair of bounds.
        start = prefix or None
        upper = _successor(prefix) if prefix else None
        while True:
            with self._write() as conn:
                end = _chunk_end(conn, start)
                end = upper if end is None else end
                counts = self._apply_chunk(conn, keep_us, start, end)
            total = [a + b for a, b in zip(total, counts, strict=True)]
            if end == upper:
                return ReconcileResult(*total)
            start = end

    def _apply_chunk(
        self,
        conn: sqlite3.Connection,
        keep_us: int | None,
        start: str | None,
        end: str | None,
    ) -> tuple[int, int, int, int, int]:
        """Apply the listed keys in [start, end) (None: unbounded) in the caller's transaction.

        Returns the rows added, removed and changed, and the objects and bytes the
        range holds after.
        """
        assert self._touched is not None
        conn.executemany(
            "INSERT OR IGNORE INTO temp.touched (key) VALUES (?)", ((k,) for k in self._touched)
        )
        keys, key_params = _key_range("key", start, end)
        listed, listed_params = _key_range("l.key", start, end)
        conn.execute(
            f"DELETE FROM temp.listing WHERE {keys} AND key IN (SELECT key FROM temp.touched)",
            key_params,
        )
        removed = conn.execute(
            f"DELETE FROM objects WHERE {keys}"
            " AND key NOT IN (SELECT key FROM temp.listing)"
            " AND key NOT IN (SELECT key FROM temp.touched)"
            " AND (? IS NULL OR last_modified_us < ?)",
            (*key_params, keep_us, keep_us),
        ).rowcount
        (changed,) = conn.execute(
            "SELECT count(*) FROM temp.listing AS l JOIN objects AS o ON o.key = l.key"
            f" WHERE {listed} AND {_COUNTED_CHANGE}",
            listed_params,
        ).fetchone()
        conn.execute(_RECONCILE_UPDATE.replace("{chunk}", listed), listed_params)
        added = conn.execute(
            f"INSERT INTO objects ({_OBJECT_COLUMNS}) SELECT {_OBJECT_COLUMNS}"
            f" FROM temp.listing AS l WHERE {listed}"
            " AND NOT EXISTS (SELECT 1 FROM objects AS o WHERE o.key = l.key)",
            listed_params,
        ).rowcount
        objects, size = conn.execute(
            f"SELECT count(*), coalesce(sum(size), 0) FROM objects WHERE {keys}", key_params
        ).fetchone()
        return added, removed, int(changed), int(objects), int(size)

    def _end_reconcile(self) -> None:
        """Stop noting written keys and drop the staging tables (their pages too)."""
        with self._lock:
            self._touched = None
        with suppress(CatalogError), self._read() as conn:
            conn.execute("DROP TABLE IF EXISTS temp.listing")
            conn.execute("DROP TABLE IF EXISTS temp.touched")

    # Backups

    def checkpoint(self, *, pause: bool) -> None:
        """Fold the WAL into the database file; with ``pause``, keep it that way.

        Home Assistant copies ``.storage`` while running: after a checkpoint with
        automatic checkpoints paused, the database file does not change until
        ``checkpoint(pause=False)``; new writes only go to the WAL, whose torn tail
        SQLite ignores when it opens a restored copy.
        """
        with self._read() as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute(f"PRAGMA wal_autocheckpoint = {0 if pause else 1000}")

    # Pending restores

    def add_pending_restore(self, pending: PendingRestore) -> None:
        """Record a restore in flight (replacing any for the same key)."""
        with self._write() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO pending_restores ({_PENDING_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    pending.key,
                    pending.tier.value,
                    pending.days,
                    _to_us(pending.requested_at),
                    _to_us(pending.ready_by),
                    None if pending.destination is None else str(pending.destination),
                    int(pending.overwrite),
                    pending.job_id,
                    int(pending.requested_again),
                ),
            )

    def remove_pending_restore(self, key: str) -> bool:
        """Forget a pending restore; return whether it was there."""
        with self._write() as conn:
            deleted = conn.execute("DELETE FROM pending_restores WHERE key = ?", (key,))
            return deleted.rowcount > 0

    def pending_restores(self) -> list[PendingRestore]:
        """Every pending restore, soonest ``ready_by`` first."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_PENDING_COLUMNS} FROM pending_restores ORDER BY ready_by_us, key"
            ).fetchall()
        return [_pending_from_row(row) for row in rows]

    # Meta

    def set_meta(self, name: str, value: str) -> None:
        """Store a small named text value (JSON, for instance)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    def get_meta(self, name: str) -> str | None:
        """Return a value stored with ``set_meta``, if any."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    # Plumbing

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """Lend the connection under the lock, SQLite errors raised as ``CatalogError``."""
        try:
            with self._lock:
                conn = self._open_connection()
                with _sqlite_errors():
                    yield conn
        except CatalogDamagedError:
            self._note_damage()
            raise

    def _open_connection(self) -> sqlite3.Connection:
        """The connection, unless the catalog was closed (lock held)."""
        if self._conn is None:
            if self._damage_noted:
                raise CatalogDamagedError("the catalog was found damaged")
            raise CatalogError("the catalog is closed")
        return self._conn

    def _note_damage(self) -> None:
        """Mark the file damaged, stop using it, and tell the owner; once.

        The mark makes the next open set the file aside; closing first means no
        connection of ours still writes to it (or deletes its WAL) by then.
        """
        with self._lock:
            if self._damage_noted:
                return
            self._damage_noted = True
            if self._conn is not None:
                with suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None
        _LOGGER.error("The catalog %s is damaged; it is set aside when next opened", self._path)
        try:
            damage_mark(self._path).touch()
        except OSError as err:
            _LOGGER.warning("Could not mark the catalog %s as damaged: %s", self._path, err)
        if self._on_damage is not None:
            try:
                self._on_damage()
            except Exception:
                # The caller is told by the CatalogDamagedError being raised anyway.
                _LOGGER.exception("Could not report the damaged catalog %s", self._path)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """Run the block in a write transaction: committed if it ends normally, else rolled back."""
        with self._read() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT (disk full) can leave the transaction open too.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise


@contextmanager
def _sqlite_errors() -> Iterator[None]:
    """Re-raise SQLite errors (disk full, corrupt file, locked) as ``CatalogError``."""
    try:
        yield
    except sqlite3.Error as err:
        message = f"{type(err).__name__}: {err}"
        code = getattr(err, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            raise CatalogDamagedError(message) from err
        raise CatalogError(message) from err


def _check_prefix(rows: list[tuple[Any, ...]], prefix: str) -> None:
    """Raise ``ValueError`` if a listed key lies outside ``prefix``."""
    for row in rows:
        if not row[0].startswith(prefix):
            raise ValueError(f"listed key {row[0]!r} is outside the reconciled prefix")


def _key_range(column: str, start: str | None, end: str | None) -> tuple[str, tuple[str, ...]]:
    """A WHERE clause for ``start <= column < end`` (None: unbounded), and its values."""
    clauses: list[str] = []
    values: list[str] = []
    if start is not None:
        clauses.append(f"{column} >= ?")
        values.append(start)
    if end is not None:
        clauses.append(f"{column} < ?")
        values.append(end)
    return " AND ".join(clauses) or "1", tuple(values)


def _chunk_end(conn: sqlite3.Connection, start: str | None) -> str | None:
    """The first listed key of the chunk after the one at ``start`` (None: the last)."""
    keys, values = _key_range("key", start, None)
    row = conn.execute(
        f"SELECT key FROM temp.listing WHERE {keys} ORDER BY key LIMIT 1 OFFSET ?",
        (*values, APPLY_CHUNK),
    ).fetchone()
    return None if row is None else str(row[0])


def damage_mark(path: Path) -> Path:
    """The file that says the catalog at ``path`` was found damaged while open."""
    return path.with_name(path.name + _DAMAGE_MARK)


def is_database_file(path: Path) -> bool:
    """Whether ``path`` is a catalog file itself: not a WAL, shared memory or damage mark."""
    return not path.name.endswith(("-wal", "-shm", _DAMAGE_MARK, _HELD_WAL))


def open_catalog(
    path: Path | str,
    on_damage: Callable[[], None] | None = None,
    now: dt.datetime | None = None,
) -> tuple[Catalog, Path | None]:
    """Open the catalog at ``path``, replacing a damaged one with an empty catalog.

    Returns the catalog and, when the file was damaged (or is not a database), where
    it was moved: ``<name>.damaged-<UTC time>``, with its WAL beside it as
    ``…-wal`` so that SQLite's recovery tools still see the last commits. Other
    errors (a newer schema, a full disk, no permission) are raised as they are.
    """
    path = Path(path)
    with _wal_held(path) as held:
        try:
            return Catalog(path, on_damage), None
        except CatalogDamagedError as err:
            aside = _set_aside(path, held, now or dt.datetime.now(dt.UTC))
            _LOGGER.warning("The catalog %s is damaged (%s); moved it to %s", path, err, aside)
    return Catalog(path, on_damage), aside


@contextmanager
def _wal_held(path: Path) -> Iterator[Path | None]:
    """Keep a second link to (or a copy of) the catalog's WAL while the catalog is checked.

    SQLite deletes the WAL when it closes a file it could not read (a wiped header),
    and with it the last commits: the link keeps them for ``_set_aside``.
    """
    wal = path.with_name(path.name + "-wal")
    held = path.with_name(path.name + _HELD_WAL)
    try:
        held.unlink(missing_ok=True)
        os.link(wal, held)
    except FileNotFoundError:
        yield None
        return
    except OSError as err:
        # A file system without hard links: a copy keeps the commits as well (nothing
        # has the catalog open yet, so the WAL does not change while it is copied).
        _LOGGER.debug("Could not link the WAL of %s, copying it: %s", path, err)
        try:
            shutil.copyfile(wal, held)
        except OSError as copy_err:
            _LOGGER.debug("Could not hold the WAL of %s: %s", path, copy_err)
            held.unlink(missing_ok=True)
            yield None
            return
    try:
        yield held
    finally:
        held.unlink(missing_ok=True)


def _set_aside(path: Path, held_wal: Path | None, now: dt.datetime) -> Path:
    """Move a damaged catalog (and its WAL) to an unused name beside it; return that."""
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    number = 1
    while aside.exists():
        number += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{number}")
    wal = path.with_name(path.name + "-wal")
    try:
        # The WAL first: a WAL left behind next to a new, empty file would be replayed
        # into it. The shared-memory index is derived from the WAL: dropped.
        if held_wal is not None and held_wal.exists():
            held_wal.rename(aside.with_name(aside.name + "-wal"))
            wal.unlink(missing_ok=True)
        elif wal.exists():
            wal.rename(aside.with_name(aside.name + "-wal"))
        path.with_name(path.name + "-shm").unlink(missing_ok=True)
        if path.exists():
            path.rename(aside)
        damage_mark(path).unlink(missing_ok=True)
    except OSError as err:
        raise CatalogError(f"could not move the damaged catalog aside: {err}") from err
    return aside


def _open(path: Path) -> sqlite3.Connection:
    """Connect, configure and bring the schema to ``SCHEMA_VERSION``."""
    with _sqlite_errors():
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; _write() issues them.
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            _check_integrity(conn)
            _migrate(conn)
        except BaseException:
            conn.close()
            raise
    return conn


def _check_integrity(conn: sqlite3.Connection) -> None:
    """Raise ``CatalogDamagedError`` unless SQLite's quick check finds the file sound.

    The quick check reads every page (about a second per million objects) but skips
    comparing indexes with their tables, which ``integrity_check`` would add.
    """
    problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(5)")]
    if problems != ["ok"]:
        raise CatalogDamagedError("quick check: " + "; ".join(problems))


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations a file lacks, all in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        _check_version(version)
        for migration in _MIGRATIONS[version:]:
            for statement in migration:
                conn.execute(statement)
        if version != SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _check_version(version: int) -> None:
    """Refuse a catalog written by a newer version of the integration."""
    if version > SCHEMA_VERSION:
        raise CatalogError(
            f"catalog schema {version} is newer than this version understands ({SCHEMA_VERSION})"
        )


def _prefix_range(prefix: str) -> tuple[str, tuple[str, ...]]:
    """Return a WHERE clause matching exactly the keys that start with ``prefix``.

    A range rather than LIKE: no wildcard to escape, and the primary key index
    serves it. SQLite compares text bytewise and UTF-8 preserves code point order,
    so the keys starting with ``prefix`` are those in [prefix, successor).
    """
    if not prefix:
        return "1", ()
    upper = _successor(prefix)
    if upper is None:
        return "key >= ?", (prefix,)
    return "key >= ? AND key < ?", (prefix, upper)


def _successor(prefix: str) -> str | None:
    """Return the smallest string greater than every string starting with ``prefix``."""
    stripped = prefix.rstrip(chr(0x10FFFF))
    if not stripped:
        return None
    code = ord(stripped[-1]) + 1
    if 0xD800 <= code <= 0xDFFF:  # surrogates cannot be stored; skip past them
        code = 0xE000
    return stripped[:-1] + chr(code)


def _class_usage(
    storage_class: StorageClass,
    objects: int,
    size: int,
    min128_bytes: int,
    objects_from_128k: int,
    early_byte_days: int,
) -> ClassUsage:
    """Turn one aggregate row into a ``ClassUsage`` (billable bytes by pricing's rules)."""
    base = min128_bytes if storage_class in MIN_BILLABLE_SIZE else size
    billable = base + objects * CLASS_RATE_OVERHEAD.get(storage_class, 0)
    return ClassUsage(
        storage_class, objects, size, billable, objects_from_128k, Decimal(early_byte_days)
    )


def _to_us(moment: dt.datetime) -> int:
    """Return the microseconds since the epoch of an aware datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")
    return (moment - _EPOCH) // _MICROSECOND


def _from_us(micros: int) -> dt.datetime:
    """Return the aware UTC datetime ``micros`` microseconds after the epoch."""
    return _EPOCH + dt.timedelta(microseconds=micros)


def _object_row(obj: ArchivedObject) -> tuple[Any, ...]:
    """Return the ``objects`` row of an ArchivedObject, in ``_OBJECT_COLUMNS`` order."""
    return (
        obj.key,
        obj.size,
        StorageClass(obj.storage_class).value,
        _to_us(obj.last_modified),
        obj.etag,
        obj.sha256,
        obj.archive_id,
        obj.description,
        obj.tree_hash,
        RestoreState(obj.restore_state).value,
        None if obj.restore_expiry is None else _to_us(obj.restore_expiry),
    )


def _stored_row(obj: ArchivedObject) -> tuple[Any, ...]:
    """Return the ``objects`` row of an ArchivedObject, in ``_STORED_COLUMNS`` order."""
    status = None if obj.archive_status is None else ArchiveStatus(obj.archive_status).value
    return (*_object_row(obj), status)


def _object_from_row(row: tuple[Any, ...]) -> ArchivedObject:
    """Build an ArchivedObject from an ``objects`` row.

    ``_STORED_COLUMNS``, or ``_OBJECT_COLUMNS`` (a listing's; no archive tier).
    """
    (key, size, storage_class, modified, etag, sha256, archive_id, description, tree_hash,
     restore_state, restore_expiry) = row[:11]  # fmt: skip
    archive_status = row[11] if len(row) > 11 else None
    return ArchivedObject(
        key=key,
        size=size,
        storage_class=StorageClass(storage_class),
        last_modified=_from_us(modified),
        etag=etag,
        sha256=sha256,
        archive_id=archive_id,
        description=description,
        tree_hash=tree_hash,
        restore_state=RestoreState(restore_state),
        restore_expiry=None if restore_expiry is None else _from_us(restore_expiry),
        archive_status=None if archive_status is None else ArchiveStatus(archive_status),
    )


def _pending_from_row(row: tuple[Any, ...]) -> PendingRestore:
    """Build a PendingRestore from a ``pending_restores`` row."""
    key, tier, days, requested_at, ready_by, destination, overwrite, job_id, again = row
    return PendingRestore(
        key=key,
        tier=RestoreTier(tier),
        days=days,
        requested_at=_from_us(requested_at),
        ready_by=_from_us(ready_by),
        destination=None if destination is None else Path(destination),
        overwrite=bool(overwrite),
        job_id=job_id,
        requested_again=bool(again),
    )
