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


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferOptions:
    """How uploads are made. Defaults suit a small host (a Raspberry Pi)."""

    storage_class: StorageClass = StorageClass.GLACIER_IR
    encryption: ServerSideEncryption = ServerSideEncryption.AES256
    kms_key_id: str | None = None
    part_size: int = 16 * MIB
    concurrency: int = 4


# When a restore is typically readable (FACTS.md: the upper end of AWS's ranges).
_RESTORE_TIMES: dict[tuple[StorageClass, RestoreTier], timedelta] = {
    (StorageClass.GLACIER, RestoreTier.EXPEDITED): timedelta(minutes=5),
    (StorageClass.GLACIER, RestoreTier.STANDARD): timedelta(hours=5),
    (StorageClass.GLACIER, RestoreTier.BULK): timedelta(hours=12),
    (StorageClass.DEEP_ARCHIVE, RestoreTier.STANDARD): timedelta(hours=12),
    (StorageClass.DEEP_ARCHIVE, RestoreTier.BULK): timedelta(hours=48),
    (StorageClass.VAULT, RestoreTier.EXPEDITED): timedelta(minutes=5),
    (StorageClass.VAULT, RestoreTier.STANDARD): timedelta(hours=5),
    (StorageClass.VAULT, RestoreTier.BULK): timedelta(hours=12),
}


def tier_available(storage_class: StorageClass, tier: RestoreTier) -> bool:
    """Whether ``tier`` can restore objects of ``storage_class`` (no Expedited for Deep Archive)."""
    return (storage_class, tier) in _RESTORE_TIMES


def typical_restore_time(storage_class: StorageClass, tier: RestoreTier) -> timedelta:
    """How long a restore of this class at this tier typically takes, at most."""
    return _RESTORE_TIMES[(storage_class, tier)]
