"""The dated price table and the billing rules that turn stored bytes into dollars.

Every price comes from ``FACTS.md`` (AWS list prices in USD). Money is ``Decimal``
throughout; a float never touches a price. A billing "GB" is 2**30 bytes and a
billing month is 30 days.

Conventions used by every function here:

* Billable size. An object is billed at its class's own rate for
  ``billable_size(storage_class, size)`` bytes: the size raised to the class's
  minimum (128 KiB for STANDARD_IA, ONEZONE_IA, GLACIER_IR) plus the index overhead
  billed at the class rate (32 KiB for GLACIER, DEEP_ARCHIVE and vault archives).
  GLACIER and DEEP_ARCHIVE objects also carry 8 KiB of name and metadata billed at
  the STANDARD rate; that part has no minimum duration.
* Days. Minimum storage durations are counted in whole UTC calendar days: an
  object stored at any time on UTC day D has used ``today - D`` days. AWS meters in
  byte-hours, so an estimate may differ from the bill by less than one day of
  storage; in exchange the catalog can compute the exposure from per-day
  aggregates, exactly, whatever the number of objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
import datetime as dt
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import NamedTuple

from .models import (
    KIB,
    ArchivedObject,
    ArchiveStatus,
    RestoreSource,
    RestoreState,
    RestoreTier,
    StorageClass,
)

# The AWS price feed the table was taken from. Re-checked against readings from
# July to September 2026: no price in the table had changed.
PRICE_TABLE_DATE = dt.date(2024, 9, 25)

GB = 2**30
TB = 2**40
DAYS_PER_MONTH = 30
DEFAULT_REGION = "us-east-1"

_SC = StorageClass

# Classes billed for at least this many bytes per object.
MIN_BILLABLE_SIZE: Mapping[StorageClass, int] = MappingProxyType(
    {_SC.STANDARD_IA: 128 * KIB, _SC.ONEZONE_IA: 128 * KIB, _SC.GLACIER_IR: 128 * KIB}
)

# Deleting, overwriting or transitioning earlier bills the remaining days.
MIN_DURATION_DAYS: Mapping[StorageClass, int] = MappingProxyType(
    {
        _SC.STANDARD_IA: 30,
        _SC.ONEZONE_IA: 30,
        _SC.GLACIER_IR: 90,
        _SC.GLACIER: 90,
        _SC.VAULT: 90,
        _SC.DEEP_ARCHIVE: 180,
    }
)

# Per-object index overhead billed at the object's own class rate.
CLASS_RATE_OVERHEAD: Mapping[StorageClass, int] = MappingProxyType(
    {_SC.GLACIER: 32 * KIB, _SC.DEEP_ARCHIVE: 32 * KIB, _SC.VAULT: 32 * KIB}
)

# Per-object name and metadata billed at the STANDARD rate.
STANDARD_RATE_OVERHEAD: Mapping[StorageClass, int] = MappingProxyType(
    {_SC.GLACIER: 8 * KIB, _SC.DEEP_ARCHIVE: 8 * KIB}
)

# INTELLIGENT_TIERING objects smaller than this are not monitored (nor tiered).
MONITORING_MIN_SIZE = 128 * KIB

# STANDARD volume tiers, as AWS's price list states them in GB-months.
_STANDARD_TIER_LIMITS = (50 * TB, 500 * TB)


class _RegionStorage(NamedTuple):
    """One row of the storage table: $ per GB-month."""

    standard: tuple[str, str, str]  # first 50 TB, next 450 TB, over 500 TB
    standard_ia: str
    onezone_ia: str
    glacier_ir: str
    glacier: str
    deep_archive: str


_STORAGE: Mapping[str, _RegionStorage] = MappingProxyType(
    {
        "us-east-1": _RegionStorage(
            ("0.023", "0.022", "0.021"), "0.0125", "0.010", "0.004", "0.0036", "0.00099"
        ),
        "eu-west-1": _RegionStorage(
            ("0.023", "0.022", "0.021"), "0.0125", "0.010", "0.004", "0.0036", "0.00099"
        ),
        "eu-central-1": _RegionStorage(
            ("0.0245", "0.0235", "0.0225"), "0.0135", "0.0108", "0.005", "0.00405", "0.0018"
        ),
        "ap-southeast-2": _RegionStorage(
            ("0.025", "0.024", "0.023"), "0.0138", "0.011", "0.005", "0.0045", "0.0020"
        ),
    }
)

# FACTS gives the legacy vault rate for us-east-1 only; it is used in every region.
_VAULT_STORAGE = "0.0036"

# Requests, $ per 1,000: (PUT/COPY/POST/LIST, GET). FACTS gives us-east-1 prices
# with eu-west-1 exceptions only, so every other region uses us-east-1's.
# INTELLIGENT_TIERING is not in FACTS: AWS prices its requests like STANDARD's.
# Vault uploads and downloads are priced like GLACIER's (us-east-1) everywhere,
# matching the vault storage rate.
_REQUESTS: Mapping[StorageClass, tuple[str, str]] = MappingProxyType(
    {
        _SC.STANDARD: ("0.005", "0.0004"),
        _SC.INTELLIGENT_TIERING: ("0.005", "0.0004"),
        _SC.STANDARD_IA: ("0.01", "0.001"),
        _SC.ONEZONE_IA: ("0.01", "0.001"),
        _SC.GLACIER_IR: ("0.02", "0.01"),
        _SC.GLACIER: ("0.03", "0.0004"),
        _SC.DEEP_ARCHIVE: ("0.05", "0.0004"),
        _SC.VAULT: ("0.03", "0.0004"),
    }
)
_REGIONAL_PUT: Mapping[str, Mapping[StorageClass, str]] = MappingProxyType(
    {"eu-west-1": {_SC.GLACIER: "0.033", _SC.DEEP_ARCHIVE: "0.055"}}
)

# DEEP_ARCHIVE's CreateMultipartUpload and UploadPart are cheaper than its PUT;
# CompleteMultipartUpload is billed at the class's PUT rate. us-east-1 everywhere.
_DEEP_ARCHIVE_PART_REQUEST = "0.005"

# Retrieval of instantly readable classes, $ per GB. us-east-1 everywhere.
_RETRIEVAL_PER_GB: Mapping[StorageClass, str] = MappingProxyType(
    {_SC.STANDARD_IA: "0.01", _SC.ONEZONE_IA: "0.01", _SC.GLACIER_IR: "0.03"}
)

# Restores: ($ per GB, $ per 1,000 requests). us-east-1 everywhere. There is no
# Expedited tier for DEEP_ARCHIVE.
_RESTORE: Mapping[tuple[StorageClass, RestoreTier], tuple[str, str]] = MappingProxyType(
    {
        (_SC.GLACIER, RestoreTier.EXPEDITED): ("0.03", "10"),
        (_SC.GLACIER, RestoreTier.STANDARD): ("0.01", "0.05"),
        (_SC.GLACIER, RestoreTier.BULK): ("0", "0"),
        (_SC.DEEP_ARCHIVE, RestoreTier.STANDARD): ("0.02", "0.10"),
        (_SC.DEEP_ARCHIVE, RestoreTier.BULK): ("0.0025", "0.025"),
    }
)

# INTELLIGENT_TIERING's archive tiers: Standard and Bulk restores are free;
# Expedited (Archive Access only) is priced like GLACIER's. us-east-1 everywhere.
_ARCHIVE_TIER_RESTORE: Mapping[tuple[ArchiveStatus, RestoreTier], tuple[str, str]] = (
    MappingProxyType(
        {
            (ArchiveStatus.ARCHIVE_ACCESS, RestoreTier.EXPEDITED): ("0.03", "10"),
            (ArchiveStatus.ARCHIVE_ACCESS, RestoreTier.STANDARD): ("0", "0"),
            (ArchiveStatus.ARCHIVE_ACCESS, RestoreTier.BULK): ("0", "0"),
            (ArchiveStatus.DEEP_ARCHIVE_ACCESS, RestoreTier.STANDARD): ("0", "0"),
            (ArchiveStatus.DEEP_ARCHIVE_ACCESS, RestoreTier.BULK): ("0", "0"),
        }
    )
)

# Data transfer out to the internet (a download to Home Assistant), $ per GB for
# the first 10 TB a month beyond the free allowance. The first 100 GB a month are
# free, summed over the whole AWS account and every region: this integration cannot
# know how much of it is left, so estimates use the rate that applies once it is
# used up (an upper bound) and say so. An unknown region uses us-east-1's.
# us-east-1's rate is FACTS.md's; the others are AWS's published first-10-TB rates
# (ap-southeast-2's as documented since 2020), not re-read from a feed: the date is
# when they were entered here, for a reader to know how old they are.
EGRESS_PRICE_DATE = dt.date(2026, 11, 27)
EGRESS_FREE_GB_PER_MONTH = 100
_EGRESS_PER_GB: Mapping[str, str] = MappingProxyType(
    {"us-east-1": "0.09", "eu-west-1": "0.09", "eu-central-1": "0.09", "ap-southeast-2": "0.114"}
)

# INTELLIGENT_TIERING monitoring, $ per 1,000 monitored objects per month.
_MONITORING_PER_1000 = "0.0025"

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class RestoreRate:
    """The price of one restore tier: per GB retrieved and per 1,000 requests."""

    per_gb: Decimal
    per_1000_requests: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceTable:
    """Prices for one region, ready to compute with. Build it with ``price_table``.

    ``storage`` holds $ per GB-month for every class (STANDARD: its first volume
    tier); ``standard_tiers`` holds STANDARD's volume tiers as (upper bound in bytes
    or None for the last tier, rate). Request prices are $ per 1,000 requests.
    """

    requested_region: str
    priced_region: str
    fallback: bool
    date: dt.date
    storage: Mapping[StorageClass, Decimal]
    standard_tiers: tuple[tuple[int | None, Decimal], ...]
    put: Mapping[StorageClass, Decimal]
    get: Mapping[StorageClass, Decimal]
    multipart_put: Mapping[StorageClass, Decimal]
    retrieval_per_gb: Mapping[StorageClass, Decimal]
    restore: Mapping[tuple[RestoreSource, RestoreTier], RestoreRate]
    monitoring_per_1000: Decimal
    egress_per_gb: Decimal = Decimal(_EGRESS_PER_GB[DEFAULT_REGION])
    overridden: frozenset[StorageClass] = frozenset()


@dataclass(frozen=True, slots=True)
class ClassUsage:
    """What one storage class holds, aggregated so that its cost needs no rows.

    * ``objects``: number of objects.
    * ``bytes``: sum of object sizes.
    * ``billable_bytes``: sum of ``billable_size(storage_class, size)``, the bytes
      billed at the class's own rate (128 KiB minimum and 32 KiB index included).
    * ``objects_over_128k``: objects of at least 128 KiB, the ones that
      INTELLIGENT_TIERING monitors (only objects *under* 128 KiB are exempt).
    * ``early_byte_days``: over the objects still inside the class's minimum
      duration, the sum of ``billable_size * remaining days``, remaining days as
      given by ``remaining_minimum_days`` at the time the usage was computed. An
      integer in value; a ``Decimal`` so that money arithmetic stays exact.

    The monthly cost is ``billable_bytes * class rate / GB`` plus ``objects * 8 KiB``
    at the STANDARD rate (GLACIER, DEEP_ARCHIVE) plus monitoring; the early deletion
    exposure is ``early_byte_days * class rate / (GB * 30)``.
    """

    storage_class: StorageClass
    objects: int = 0
    bytes: int = 0
    billable_bytes: int = 0
    objects_over_128k: int = 0
    early_byte_days: Decimal = Decimal(0)

    def __add__(self, other: ClassUsage) -> ClassUsage:
        """Combine two usages of the same class."""
        if other.storage_class is not self.storage_class:
            raise ValueError("cannot add usages of different storage classes")
        return ClassUsage(
            self.storage_class,
            self.objects + other.objects,
            self.bytes + other.bytes,
            self.billable_bytes + other.billable_bytes,
            self.objects_over_128k + other.objects_over_128k,
            self.early_byte_days + other.early_byte_days,
        )


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """A month of storage: the total and its share per storage class.

    A class's share includes everything its objects cause: storage at the class
    rate, the 8 KiB metadata at the STANDARD rate (GLACIER, DEEP_ARCHIVE), the
    monitoring fee (INTELLIGENT_TIERING) and the restored copies of its objects that
    have not expired (at the STANDARD rate). ``total`` is the sum of the shares;
    ``restored_copies`` the part of it that the restored copies cost.
    """

    total: Decimal
    by_class: Mapping[StorageClass, Decimal]
    restored_copies: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreEstimate:
    """What one restore (and its download, if any) adds to the bill, by kind of charge.

    ``egress`` is priced at the rate after the account's free monthly allowance
    (``EGRESS_FREE_GB_PER_MONTH``): an upper bound, as that allowance is shared.
    """

    retrieval: Decimal = Decimal(0)
    requests: Decimal = Decimal(0)
    copy_storage: Decimal = Decimal(0)
    egress: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        """The sum of every charge."""
        return self.retrieval + self.requests + self.copy_storage + self.egress


def price_table(
    region: str, overrides: Mapping[str, Decimal | str | float] | None = None
) -> PriceTable:
    """Return the prices for ``region``, with the user's storage rate overrides.

    An unknown region gets us-east-1's prices and ``fallback=True``; ``priced_region``
    says whose prices were used. ``overrides`` maps a storage class name to a rate
    in $ per GB-month that replaces the table's (for STANDARD: every volume tier).
    Raises ``ValueError`` for an unknown class name or a negative or non-numeric rate.
    """
    priced = region if region in _STORAGE else DEFAULT_REGION
    row = _STORAGE[priced]
    tiers = tuple(Decimal(rate) for rate in row.standard)
    storage = {
        _SC.STANDARD: tiers[0],
        _SC.INTELLIGENT_TIERING: tiers[0],
        _SC.STANDARD_IA: Decimal(row.standard_ia),
        _SC.ONEZONE_IA: Decimal(row.onezone_ia),
        _SC.GLACIER_IR: Decimal(row.glacier_ir),
        _SC.GLACIER: Decimal(row.glacier),
        _SC.DEEP_ARCHIVE: Decimal(row.deep_archive),
        _SC.VAULT: Decimal(_VAULT_STORAGE),
    }
    standard_tiers: tuple[tuple[int | None, Decimal], ...] = tuple(
        zip((*_STANDARD_TIER_LIMITS, None), tiers, strict=True)
    )
    overridden = _parse_overrides(overrides or {})
    storage.update(overridden)
    if _SC.STANDARD in overridden:
        standard_tiers = ((None, overridden[_SC.STANDARD]),)

    restore: dict[tuple[RestoreSource, RestoreTier], RestoreRate] = {}
    for rates in (_RESTORE, _ARCHIVE_TIER_RESTORE):
        for (source, tier), (gb, req) in rates.items():
            restore[(source, tier)] = RestoreRate(Decimal(gb), Decimal(req))
    put = {c: Decimal(prices[0]) for c, prices in _REQUESTS.items()}
    put.update({c: Decimal(p) for c, p in _REGIONAL_PUT.get(priced, {}).items()})
    multipart_put = dict(put)
    multipart_put[_SC.DEEP_ARCHIVE] = Decimal(_DEEP_ARCHIVE_PART_REQUEST)
    return PriceTable(
        requested_region=region,
        priced_region=priced,
        fallback=priced != region,
        date=PRICE_TABLE_DATE,
        storage=MappingProxyType(storage),
        standard_tiers=standard_tiers,
        put=MappingProxyType(put),
        get=MappingProxyType({c: Decimal(prices[1]) for c, prices in _REQUESTS.items()}),
        multipart_put=MappingProxyType(multipart_put),
        retrieval_per_gb=MappingProxyType({c: Decimal(p) for c, p in _RETRIEVAL_PER_GB.items()}),
        restore=MappingProxyType(restore),
        monitoring_per_1000=Decimal(_MONITORING_PER_1000),
        egress_per_gb=Decimal(_EGRESS_PER_GB.get(priced, _EGRESS_PER_GB[DEFAULT_REGION])),
        overridden=frozenset(overridden),
    )


def _parse_overrides(overrides: Mapping[str, Decimal | str | float]) -> dict[StorageClass, Decimal]:
    """Validate user overrides into {class: $ per GB-month}."""
    parsed: dict[StorageClass, Decimal] = {}
    for name, value in overrides.items():
        try:
            storage_class = StorageClass(str(name).upper())
        except ValueError as err:
            raise ValueError(f"unknown storage class {name!r}") from err
        parsed[storage_class] = _parse_rate(value)
    return parsed


def _parse_rate(value: Decimal | str | float) -> Decimal:
    """Turn a user-supplied rate into a finite, non-negative Decimal."""
    # str() of a float is its shortest round-trip form: 0.0036, not 0.00359999...
    text = value if isinstance(value, Decimal) else str(value).strip()
    try:
        rate = Decimal(text)
    except InvalidOperation as err:
        raise ValueError(f"not a price: {value!r}") from err
    if not rate.is_finite() or rate < 0:
        raise ValueError(f"not a price: {value!r}")
    return rate


def billable_size(storage_class: StorageClass, size: int) -> int:
    """Return the bytes of one object billed at its class's rate (minimum and index added)."""
    _check_size(size)
    minimum = MIN_BILLABLE_SIZE.get(storage_class, 0)
    return max(size, minimum) + CLASS_RATE_OVERHEAD.get(storage_class, 0)


def utc_day(moment: dt.datetime) -> int:
    """Return the UTC calendar day number of an aware datetime (days since 1970-01-01)."""
    _check_aware(moment)
    return (moment - _EPOCH) // _DAY


def remaining_minimum_days(
    storage_class: StorageClass, stored_at: dt.datetime, now: dt.datetime
) -> int:
    """Return the whole days left of the class's minimum storage duration (0 if none).

    Days are UTC calendar days (see the module docstring). An object stored "in the
    future" (clock skew) counts as stored today.
    """
    minimum = MIN_DURATION_DAYS.get(storage_class, 0)
    if not minimum:
        return 0
    elapsed = max(0, utc_day(now) - utc_day(stored_at))
    return max(0, minimum - elapsed)


def object_monthly_cost(table: PriceTable, storage_class: StorageClass, size: int) -> Decimal:
    """Return the monthly storage cost of one object, every per-object rule applied.

    128 KiB minimum, GLACIER/DEEP_ARCHIVE/vault overheads and the INTELLIGENT_TIERING
    monitoring fee are included; STANDARD volume is priced at the first tier.
    """
    numerator = (
        billable_size(storage_class, size) * table.storage[storage_class]
        + STANDARD_RATE_OVERHEAD.get(storage_class, 0) * table.storage[_SC.STANDARD]
    )
    cost = numerator / GB
    if storage_class is _SC.INTELLIGENT_TIERING and size >= MONITORING_MIN_SIZE:
        cost += table.monitoring_per_1000 / 1000
    return cost


def monthly_cost(
    table: PriceTable,
    usages: Iterable[ClassUsage],
    restored: Mapping[StorageClass, int] | None = None,
) -> CostBreakdown:
    """Return the monthly storage cost of a whole catalog, from its per-class aggregates.

    STANDARD volume tiers apply to all bytes billed at the STANDARD rate: the
    STANDARD objects *and* the 8 KiB metadata of GLACIER and DEEP_ARCHIVE objects,
    as AWS counts them together. To split that bill by class, the metadata is placed
    at the bottom of the tiers (it is small), STANDARD objects above it.
    INTELLIGENT_TIERING is priced at its frequent-tier rate (the highest it can be)
    plus monitoring; its own volume tiers are not modelled.

    ``restored`` maps a class to the bytes of its restored copies alive now
    (``restored_copy_bytes``): each is billed at the STANDARD rate, on top of the
    archived object, until it expires. They are placed in the STANDARD tiers after
    the metadata, and added to their class's share.
    """
    merged = _merge(usages)
    shares: dict[StorageClass, Decimal] = {}
    standard_bytes_placed = 0
    for storage_class, usage in merged.items():
        if storage_class is _SC.STANDARD:
            continue
        numerator = usage.billable_bytes * table.storage[storage_class]
        metadata = usage.objects * STANDARD_RATE_OVERHEAD.get(storage_class, 0)
        numerator += _tiered(table.standard_tiers, standard_bytes_placed, metadata)
        standard_bytes_placed += metadata
        share = numerator / GB
        if storage_class is _SC.INTELLIGENT_TIERING:
            share += usage.objects_over_128k * table.monitoring_per_1000 / 1000
        shares[storage_class] = shares.get(storage_class, Decimal(0)) + share
    copies = Decimal(0)
    for storage_class, size in (restored or {}).items():
        _check_size(size)
        share = _tiered(table.standard_tiers, standard_bytes_placed, size) / GB
        standard_bytes_placed += size
        shares[storage_class] = shares.get(storage_class, Decimal(0)) + share
        copies += share
    if _SC.STANDARD in merged:
        standard = merged[_SC.STANDARD].billable_bytes
        shares[_SC.STANDARD] = _tiered(table.standard_tiers, standard_bytes_placed, standard) / GB
    by_class = {c: shares[c] for c in StorageClass if c in shares}
    return CostBreakdown(sum(by_class.values(), Decimal(0)), MappingProxyType(by_class), copies)


def early_deletion_charge(
    table: PriceTable,
    storage_class: StorageClass,
    size: int,
    stored_at: dt.datetime,
    now: dt.datetime,
) -> Decimal:
    """Return what deleting (or overwriting, or transitioning) one object now would add.

    Pro rata for the remaining whole days of the minimum duration, a month being
    30 days: ``billable_size * class rate * remaining days / 30``. The 8 KiB billed
    at the STANDARD rate has no minimum duration. 0 for classes without a minimum
    and once the minimum has passed. Both datetimes must be timezone-aware.
    """
    days = remaining_minimum_days(storage_class, stored_at, now)
    if not days:
        return Decimal(0)
    byte_days = billable_size(storage_class, size) * days
    return byte_days * table.storage[storage_class] / (GB * DAYS_PER_MONTH)


def early_deletion_exposure(table: PriceTable, usages: Iterable[ClassUsage]) -> Decimal:
    """Return what deleting every object now would add in early deletion charges.

    Equal (to Decimal precision) to the sum of ``early_deletion_charge`` over the
    objects the usages were computed from, at the time they were computed.
    """
    numerator = sum(
        (u.early_byte_days * table.storage[u.storage_class] for u in usages), Decimal(0)
    )
    return numerator / (GB * DAYS_PER_MONTH)


def restore_estimate(
    table: PriceTable,
    source: RestoreSource,
    tier: RestoreTier,
    size: int,
    *,
    copy_days: int,
    download: bool,
    retrieve: bool = True,
    request: bool = True,
) -> RestoreEstimate:
    """Return what making one object readable (and downloading it) costs, by charge.

    * GLACIER, DEEP_ARCHIVE: retrieval per GB + the restore request + the temporary
      copy at the STANDARD first-tier rate for ``copy_days`` (month = 30 days).
      Asking again for a restored copy (``retrieve=False``) only costs the request
      and the days the copy now lives longer (the caller passes them as
      ``copy_days``); reading a restored copy without asking (``retrieve=False,
      request=False``) costs neither.
    * INTELLIGENT_TIERING archive tiers (an ``ArchiveStatus``): Standard and Bulk
      free, Expedited like GLACIER's; no copy (the object moves to the Frequent
      Access tier, already priced at that rate).
    * VAULT: the GLACIER retrieval prices; the job output is held without a
      storage charge.
    * Instant classes: retrieval per GB (IA classes, GLACIER_IR); no tier, no copy.

    ``download`` adds the GET that reads the object and the internet egress of its
    bytes. A tier that does not exist for the source raises ``ValueError``.
    """
    _check_size(size)
    if copy_days < 0:
        raise ValueError("copy_days must not be negative")
    egress = size * table.egress_per_gb / GB if download else Decimal(0)
    if isinstance(source, ArchiveStatus) or source in (_SC.GLACIER, _SC.DEEP_ARCHIVE, _SC.VAULT):
        priced_as: RestoreSource = _SC.GLACIER if source is _SC.VAULT else source
        rate = table.restore.get((priced_as, tier))
        if rate is None:
            raise ValueError(f"{tier} retrieval does not exist for {source}")
        getter = _SC.INTELLIGENT_TIERING if isinstance(source, ArchiveStatus) else source
        requests = rate.per_1000_requests / 1000 if request else Decimal(0)
        if download:
            requests += table.get[getter] / 1000
        copy = Decimal(0)
        if source in (_SC.GLACIER, _SC.DEEP_ARCHIVE):
            copy = size * copy_days * table.storage[_SC.STANDARD] / (GB * DAYS_PER_MONTH)
        retrieval = size * rate.per_gb / GB if retrieve else Decimal(0)
        return RestoreEstimate(
            retrieval=retrieval, requests=requests, copy_storage=copy, egress=egress
        )
    storage_class = StorageClass(source)
    return RestoreEstimate(
        retrieval=size * table.retrieval_per_gb.get(storage_class, Decimal(0)) / GB,
        requests=table.get[storage_class] / 1000,
        egress=egress,
    )


def restore_cost(
    table: PriceTable, storage_class: RestoreSource, tier: RestoreTier, size: int, days: int
) -> Decimal:
    """Return the cost of making one object readable, by class and tier.

    * GLACIER, DEEP_ARCHIVE: retrieval per GB + restore request fee + the temporary
      copy, billed at the STANDARD first-tier rate for ``days`` (month = 30 days).
      Expedited does not exist for DEEP_ARCHIVE: ``ValueError``.
    * VAULT: the GLACIER retrieval prices; a vault job's output is held for 24 hours
      without a storage charge, so ``days`` is ignored.
    * STANDARD_IA, ONEZONE_IA, GLACIER_IR: retrieval per GB + one GET; no tier, no days.
    * STANDARD, INTELLIGENT_TIERING: one GET.

    The GET that downloads a restored GLACIER/DEEP_ARCHIVE object afterwards, and
    the egress of any download, are not included (``restore_estimate`` has them).
    """
    if storage_class in (_SC.GLACIER, _SC.DEEP_ARCHIVE) and days < 1:
        raise ValueError("a restore lasts at least one day")
    estimate = restore_estimate(table, storage_class, tier, size, copy_days=days, download=False)
    return estimate.total


def upload_request_cost(
    table: PriceTable, storage_class: StorageClass, size: int, part_size: int | None
) -> Decimal:
    """Return the request charges for uploading one object.

    One PUT, or, when ``part_size`` is given and ``size`` exceeds it, a multipart
    upload: initiate + one request per part + complete, each a billed request at the
    class's PUT rate (DEEP_ARCHIVE: initiate and parts at its cheaper part rate).
    """
    _check_size(size)
    if part_size is None or size <= part_size:
        return table.put[storage_class] / 1000
    if part_size <= 0:
        raise ValueError("part_size must be positive")
    parts = -(-size // part_size)
    initiate_and_parts = (1 + parts) * table.multipart_put[storage_class]
    return (initiate_and_parts + table.put[storage_class]) / 1000


def summarize(objects: Iterable[ArchivedObject], now: dt.datetime) -> list[ClassUsage]:
    """Aggregate objects into one ``ClassUsage`` per class present, in class order.

    The reference the catalog's SQL aggregates must agree with; also usable on a
    bucket listing without a catalog.
    """
    merged: dict[StorageClass, ClassUsage] = {}
    for obj in objects:
        storage_class = obj.storage_class
        billable = billable_size(storage_class, obj.size)
        days = remaining_minimum_days(storage_class, obj.last_modified, now)
        one = ClassUsage(
            storage_class,
            1,
            obj.size,
            billable,
            int(obj.size >= MONITORING_MIN_SIZE),
            Decimal(billable * days),
        )
        previous = merged.get(storage_class)
        merged[storage_class] = one if previous is None else previous + one
    return [merged[c] for c in StorageClass if c in merged]


def restored_copy_bytes(
    objects: Iterable[ArchivedObject], now: dt.datetime
) -> dict[StorageClass, int]:
    """Bytes of the restored GLACIER/DEEP_ARCHIVE copies alive at ``now``, by class.

    The reference ``Catalog.restored_copies`` agrees with. A copy of unknown expiry
    counts as alive.
    """
    _check_aware(now)
    copies: dict[StorageClass, int] = {}
    for obj in objects:
        if obj.storage_class not in (_SC.GLACIER, _SC.DEEP_ARCHIVE):
            continue
        if obj.restore_state is not RestoreState.RESTORED:
            continue
        if obj.restore_expiry is not None and obj.restore_expiry <= now:
            continue
        copies[obj.storage_class] = copies.get(obj.storage_class, 0) + obj.size
    return copies


def _merge(usages: Iterable[ClassUsage]) -> dict[StorageClass, ClassUsage]:
    """Sum usages per class, in class order."""
    merged: dict[StorageClass, ClassUsage] = {}
    for usage in usages:
        previous = merged.get(usage.storage_class)
        merged[usage.storage_class] = usage if previous is None else previous + usage
    return {c: merged[c] for c in StorageClass if c in merged}


def _tiered(tiers: tuple[tuple[int | None, Decimal], ...], start: int, amount: int) -> Decimal:
    """Price the bytes [start, start + amount) of a tiered volume: sum of bytes * rate."""
    total = Decimal(0)
    end = start + amount
    lower = 0
    for upper, rate in tiers:
        top = end if upper is None else min(end, upper)
        bottom = max(start, lower)
        if top > bottom:
            total += (top - bottom) * rate
        if upper is None or upper >= end:
            break
        lower = upper
    return total


def _check_size(size: int) -> None:
    if size < 0:
        raise ValueError("size must not be negative")


def _check_aware(moment: dt.datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")
