"""Frozen value types shared by the engine and the Home Assistant shell.

Sizes are bytes (int), money is USD as ``Decimal``, times are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


class StorageClass(StrEnum):
    """S3 storage classes, plus the legacy Glacier vault as a pseudo-class."""

    STANDARD = "STANDARD"
    STANDARD_IA = "STANDARD_IA"
    ONEZONE_IA = "ONEZONE_IA"
    INTELLIGENT_TIERING = "INTELLIGENT_TIERING"
    GLACIER_IR = "GLACIER_IR"
    GLACIER = "GLACIER"
    DEEP_ARCHIVE = "DEEP_ARCHIVE"
    VAULT = "VAULT"

    @property
    def needs_restore(self) -> bool:
        """Whether objects of this class must be restored before they can be read."""
        return self in (StorageClass.GLACIER, StorageClass.DEEP_ARCHIVE, StorageClass.VAULT)


# The classes a user can pick for an S3 upload.
S3_STORAGE_CLASSES: tuple[StorageClass, ...] = tuple(
    c for c in StorageClass if c is not StorageClass.VAULT
)


class RestoreTier(StrEnum):
    """Glacier retrieval tiers."""

    EXPEDITED = "Expedited"
    STANDARD = "Standard"
    BULK = "Bulk"


class ArchiveStatus(StrEnum):
    """INTELLIGENT_TIERING's opt-in archive tiers (HEAD's ``ArchiveStatus``).

    An object in one of them must be restored (without ``Days``: it moves back to the
    Frequent Access tier) before it can be read, like a GLACIER object.
    """

    ARCHIVE_ACCESS = "ARCHIVE_ACCESS"
    DEEP_ARCHIVE_ACCESS = "DEEP_ARCHIVE_ACCESS"


# What decides a restore's tiers, times and prices: the storage class, or for an
# INTELLIGENT_TIERING object its archive tier.
RestoreSource = StorageClass | ArchiveStatus


class RestoreState(StrEnum):
    """Where an archived object stands with respect to restore."""

    NONE = "none"
    IN_PROGRESS = "in_progress"
    RESTORED = "restored"


class ServerSideEncryption(StrEnum):
    """Server-side encryption applied to every uploaded object."""

    NONE = "none"
    AES256 = "AES256"
    KMS = "aws:kms"


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """What is needed to build a client. The secret never appears in ``repr``."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str
    endpoint_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchivedObject:
    """One stored thing: an S3 object (``key``) or a vault archive (``archive_id``)."""

    key: str
    size: int
    storage_class: StorageClass
    last_modified: datetime
    etag: str | None = None
    sha256: str | None = None
    archive_id: str | None = None
    description: str | None = None
    tree_hash: str | None = None
    restore_state: RestoreState = RestoreState.NONE
    restore_expiry: datetime | None = None
    archive_status: ArchiveStatus | None = None

    @property
    def restore_source(self) -> RestoreSource:
        """What a restore of this object is priced and timed by."""
        if self.storage_class is StorageClass.INTELLIGENT_TIERING and self.archive_status:
            return self.archive_status
        return self.storage_class

    @property
    def needs_restore(self) -> bool:
        """Whether the object must be restored before it can be read (as it was seen)."""
        return isinstance(self.restore_source, ArchiveStatus) or self.storage_class.needs_restore


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingRestore:
    """A restore that was requested and has not finished (survives restarts)."""

    key: str
    tier: RestoreTier
    days: int
    requested_at: datetime
    ready_by: datetime
    destination: Path | None = None
    overwrite: bool = False
    job_id: str | None = None
    # Set once the restore was asked again because its copy expired unread: a second
    # expiry fails it instead of asking forever.
    requested_again: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferOptions:
    """How uploads are made. Defaults suit a small host (a Raspberry Pi)."""

    storage_class: StorageClass = StorageClass.GLACIER_IR
    encryption: ServerSideEncryption = ServerSideEncryption.AES256
    kms_key_id: str | None = None
    part_size: int = 16 * MIB
    concurrency: int = 4


# When a restore is typically readable (FACTS.md: the upper end of AWS's ranges).
# INTELLIGENT_TIERING's archive tiers: Archive Access Expedited 1-5 min, Standard
# 3-5 h, Bulk 5-12 h; Deep Archive Access Standard within 12 h, Bulk within 48 h and
# no Expedited.
_RESTORE_TIMES: dict[tuple[RestoreSource, RestoreTier], timedelta] = {
    (StorageClass.GLACIER, RestoreTier.EXPEDITED): timedelta(minutes=5),
    (StorageClass.GLACIER, RestoreTier.STANDARD): timedelta(hours=5),
    (StorageClass.GLACIER, RestoreTier.BULK): timedelta(hours=12),
    (StorageClass.DEEP_ARCHIVE, RestoreTier.STANDARD): timedelta(hours=12),
    (StorageClass.DEEP_ARCHIVE, RestoreTier.BULK): timedelta(hours=48),
    (StorageClass.VAULT, RestoreTier.EXPEDITED): timedelta(minutes=5),
    (StorageClass.VAULT, RestoreTier.STANDARD): timedelta(hours=5),
    (StorageClass.VAULT, RestoreTier.BULK): timedelta(hours=12),
    (ArchiveStatus.ARCHIVE_ACCESS, RestoreTier.EXPEDITED): timedelta(minutes=5),
    (ArchiveStatus.ARCHIVE_ACCESS, RestoreTier.STANDARD): timedelta(hours=5),
    (ArchiveStatus.ARCHIVE_ACCESS, RestoreTier.BULK): timedelta(hours=12),
    (ArchiveStatus.DEEP_ARCHIVE_ACCESS, RestoreTier.STANDARD): timedelta(hours=12),
    (ArchiveStatus.DEEP_ARCHIVE_ACCESS, RestoreTier.BULK): timedelta(hours=48),
}


def tier_available(source: RestoreSource, tier: RestoreTier) -> bool:
    """Whether ``tier`` can restore objects of ``source`` (no Expedited for the deep tiers)."""
    return (source, tier) in _RESTORE_TIMES


def available_tiers(source: RestoreSource) -> tuple[RestoreTier, ...]:
    """The tiers AWS offers for restoring objects of ``source``, fastest first."""
    return tuple(t for t in RestoreTier if tier_available(source, t))


def typical_restore_time(source: RestoreSource, tier: RestoreTier) -> timedelta:
    """How long a restore of this class (or archive tier) at this tier takes, at most."""
    return _RESTORE_TIMES[(source, tier)]
