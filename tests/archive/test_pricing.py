"""The cost model against hand-computed figures.

Every expected value is a literal worked out from FACTS.md, with the arithmetic in
the comment. Sizes are powers of two so that the exact results are short decimals:
1 GiB = 1 GB, 128 KiB = 1/8192 GB, 32 KiB = 1/32768 GB, 8 KiB = 1/131072 GB.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal

import pytest

from custom_components.s3_glacier.archive.models import (
    GIB,
    KIB,
    MIB,
    ArchivedObject,
    ArchiveStatus,
    RestoreState,
    RestoreTier,
    StorageClass,
)
from custom_components.s3_glacier.archive.pricing import (
    EGRESS_FREE_GB_PER_MONTH,
    ClassUsage,
    RestoreEstimate,
    early_deletion_charge,
    early_deletion_exposure,
    monthly_cost,
    object_monthly_cost,
    price_table,
    remaining_minimum_days,
    restore_cost,
    restore_estimate,
    restored_copy_bytes,
    summarize,
    upload_request_cost,
)

SC = StorageClass
TB = 1024 * GIB
US = price_table("us-east-1")
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def ago(days: int, hours: int = 0) -> datetime:
    return NOW - timedelta(days=days, hours=hours)


# object_monthly_cost


@pytest.mark.parametrize(
    ("region", "storage_class", "size", "expected"),
    [
        ("us-east-1", SC.STANDARD, 0, "0"),
        ("us-east-1", SC.STANDARD, GIB, "0.023"),
        # 1 KiB billed as 128 KiB: 0.0125 / 8192
        ("us-east-1", SC.STANDARD_IA, KIB, "0.00000152587890625"),
        ("us-east-1", SC.STANDARD_IA, GIB, "0.0125"),
        # 64 KiB billed as 128 KiB: 0.010 / 8192
        ("us-east-1", SC.ONEZONE_IA, 64 * KIB, "0.000001220703125"),
        # exactly the minimum: 0.004 / 8192
        ("us-east-1", SC.GLACIER_IR, 128 * KIB, "0.00000048828125"),
        ("us-east-1", SC.GLACIER_IR, GIB, "0.004"),
        # (1 GB + 32 KiB) at 0.0036 + 8 KiB at 0.023:
        # 0.0036 + 0.0036/32768 + 0.023/131072 = 0.0036 + 0.00000010986328125
        #   + 0.00000017547607421875
        ("us-east-1", SC.GLACIER, GIB, "0.00360028533935546875"),
        # an empty object still costs its 40 KiB: 0.00099/32768 + 0.023/131072
        ("us-east-1", SC.DEEP_ARCHIVE, 0, "0.0000002056884765625"),
        # vault: 32 KiB at the vault rate, nothing at the STANDARD rate
        ("us-east-1", SC.VAULT, GIB, "0.00360010986328125"),
        # under 128 KiB: frequent tier, no monitoring: 0.023 / 16384
        ("us-east-1", SC.INTELLIGENT_TIERING, 64 * KIB, "0.00000140380859375"),
        # 128 KiB is not "under" 128 KiB: monitored. 0.023/8192 + 0.0025/1000
        ("us-east-1", SC.INTELLIGENT_TIERING, 128 * KIB, "0.0000053076171875"),
        ("us-east-1", SC.INTELLIGENT_TIERING, GIB, "0.0230025"),
        # 0.00405 + 0.00405/32768 + 0.0245/131072
        ("eu-central-1", SC.GLACIER, GIB, "0.004050310516357421875"),
        # 0.0020 + 0.0020/32768 + 0.025/131072
        ("ap-southeast-2", SC.DEEP_ARCHIVE, GIB, "0.00200025177001953125"),
        ("eu-west-1", SC.STANDARD_IA, GIB, "0.0125"),
        # the vault rate is the same everywhere
        ("ap-southeast-2", SC.VAULT, GIB, "0.00360010986328125"),
    ],
)
def test_object_monthly_cost(
    region: str, storage_class: StorageClass, size: int, expected: str
) -> None:
    assert object_monthly_cost(price_table(region), storage_class, size) == Decimal(expected)


def test_negative_size_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^size must not be negative$"):
        object_monthly_cost(US, SC.STANDARD, -1)


# monthly_cost


def test_standard_tiers_crossing_50_tb() -> None:
    # 60 TB: 51200 GB at 0.023 + 10240 GB at 0.022 = 1177.6 + 225.28
    cost = monthly_cost(US, [ClassUsage(SC.STANDARD, 1, 60 * TB, 60 * TB)])
    assert cost.total == Decimal("1402.88")
    assert dict(cost.by_class) == {SC.STANDARD: Decimal("1402.88")}


def test_standard_tiers_crossing_500_tb() -> None:
    # 600 TB: 51200 * 0.023 + 460800 * 0.022 + 102400 * 0.021
    #       = 1177.6 + 10137.6 + 2150.4
    cost = monthly_cost(US, [ClassUsage(SC.STANDARD, 1, 600 * TB, 600 * TB)])
    assert cost.total == Decimal("13465.6")


def test_glacier_metadata_counts_toward_standard_tiers() -> None:
    # 2**20 GLACIER objects of 1 MiB: 1024 GB + 2**20 * 32 KiB = 1056 GB at 0.0036
    # = 3.8016, and 2**20 * 8 KiB = 8 GB of metadata at the bottom of the STANDARD
    # tiers: 8 * 0.023 = 0.184. STANDARD's 60 TB then starts at 8 GB:
    # 51192 * 0.023 + 10248 * 0.022 = 1177.416 + 225.456 = 1402.872.
    glacier = ClassUsage(SC.GLACIER, 2**20, TB, TB + 2**20 * 32 * KIB)
    standard = ClassUsage(SC.STANDARD, 1, 60 * TB, 60 * TB)
    cost = monthly_cost(US, [standard, glacier])
    assert dict(cost.by_class) == {
        SC.STANDARD: Decimal("1402.872"),
        SC.GLACIER: Decimal("3.9856"),
    }
    # 1402.88 for STANDARD alone + the 8 GB that spilled into the 0.022 tier
    assert cost.total == Decimal("1406.8576")


def test_intelligent_tiering_monitoring_from_aggregates() -> None:
    # 1 GB at 0.023 + 2 monitored objects * 0.0025 / 1000
    usage = ClassUsage(SC.INTELLIGENT_TIERING, 3, GIB, GIB, 2)
    assert monthly_cost(US, [usage]).total == Decimal("0.023005")


def test_monthly_cost_of_summarized_objects() -> None:
    objects = [
        ArchivedObject(key="a", size=KIB, storage_class=SC.STANDARD_IA, last_modified=NOW),
        ArchivedObject(key="b", size=GIB, storage_class=SC.STANDARD_IA, last_modified=NOW),
        ArchivedObject(key="c", size=0, storage_class=SC.DEEP_ARCHIVE, last_modified=NOW),
        ArchivedObject(key="d", size=GIB, storage_class=SC.GLACIER, last_modified=NOW),
        ArchivedObject(key="e", size=64 * KIB, storage_class=SC.INTELLIGENT_TIERING,
                       last_modified=NOW),
        ArchivedObject(key="f", size=GIB, storage_class=SC.INTELLIGENT_TIERING,
                       last_modified=NOW),
    ]  # fmt: skip
    cost = monthly_cost(US, summarize(objects, NOW))
    assert dict(cost.by_class) == {
        # 0.00000152587890625 + 0.0125
        SC.STANDARD_IA: Decimal("0.01250152587890625"),
        # 0.00000140380859375 + 0.0230025
        SC.INTELLIGENT_TIERING: Decimal("0.02300390380859375"),
        SC.GLACIER: Decimal("0.00360028533935546875"),
        SC.DEEP_ARCHIVE: Decimal("0.0000002056884765625"),
    }
    # the aggregate cost is the sum of the per-object costs
    assert cost.total == sum(
        (object_monthly_cost(US, o.storage_class, o.size) for o in objects), Decimal(0)
    )


def test_monthly_cost_merges_usages_of_one_class() -> None:
    one = ClassUsage(SC.STANDARD_IA, 1, GIB, GIB)
    assert monthly_cost(US, [one, one]).by_class[SC.STANDARD_IA] == Decimal("0.025")
    assert monthly_cost(US, []).total == Decimal(0)


def test_class_usages_of_different_classes_do_not_add() -> None:
    with pytest.raises(ValueError, match=r"^cannot add usages of different storage classes$"):
        _ = ClassUsage(SC.STANDARD) + ClassUsage(SC.GLACIER)


def test_summarize_aggregates() -> None:
    objects = [
        ArchivedObject(key="a", size=KIB, storage_class=SC.GLACIER_IR, last_modified=ago(10)),
        ArchivedObject(key="b", size=GIB, storage_class=SC.GLACIER_IR, last_modified=ago(100)),
        ArchivedObject(key="c", size=5, storage_class=SC.GLACIER, last_modified=ago(89)),
    ]
    assert summarize(objects, NOW) == [
        # billable: 128 KiB + 1 GiB; early: 128 KiB * (90 - 10) days, b is past 90 days
        ClassUsage(SC.GLACIER_IR, 2, KIB + GIB, 128 * KIB + GIB, 1, Decimal(128 * KIB * 80)),
        # billable: 5 + 32 KiB; early: (5 + 32768) * 1 day
        ClassUsage(SC.GLACIER, 1, 5, 5 + 32 * KIB, 0, Decimal(32773)),
    ]


# early deletion


@pytest.mark.parametrize(
    ("storage_class", "size", "stored_at", "now", "expected"),
    [
        # 30-day class: 15 of 30 days used, 15 left: 0.0125 * 15/30
        (SC.STANDARD_IA, GIB, "2026-01-01T10:00", "2026-01-16T09:00", "0.00625"),
        # UTC days: 23:30 at UTC-5 is Jan 2 in UTC, so 15 days have been used by Jan 17
        (SC.STANDARD_IA, GIB, "2026-01-01T23:30-05:00", "2026-01-17T00:00", "0.00625"),
        # stored today: the full 30 days, at the 128 KiB minimum: 0.0125/8192
        (SC.STANDARD_IA, KIB, "2026-01-01T00:00", "2026-01-01T23:59", "0.00000152587890625"),
        # at the minimum (30 calendar days) and after it
        (SC.STANDARD_IA, GIB, "2026-01-01T10:00", "2026-01-31T09:00", "0"),
        (SC.ONEZONE_IA, GIB, "2026-01-01T10:00", "2026-03-01T00:00", "0"),
        # 90-day class: 30 days left of 90: 0.004 * 30/30
        (SC.GLACIER_IR, GIB, "2026-01-01T00:00", "2026-03-02T00:00", "0.004"),
        # one day left: 0.004/30, to Decimal's 28 significant digits
        (SC.GLACIER_IR, GIB, "2026-01-01T00:00", "2026-03-31T00:00",
         "0.0001333333333333333333333333333"),
        (SC.GLACIER_IR, GIB, "2026-01-01T00:00", "2026-04-01T00:00", "0"),
        # (1 GB + 32 KiB) * 0.0036 * 90/30; the 8 KiB at the STANDARD rate has no minimum
        (SC.GLACIER, GIB, "2026-01-01T00:00", "2026-01-01T12:00", "0.01080032958984375"),
        (SC.GLACIER, GIB, "2026-01-01T00:00", "2026-04-01T00:00", "0"),
        # vault, 60 of 90 days left: (1 GB + 32 KiB) * 0.0036 * 2
        (SC.VAULT, GIB, "2026-01-01T00:00", "2026-01-31T00:00", "0.0072002197265625"),
        # 180-day class: (1 GB + 32 KiB) * 0.00099 * 180/30
        (SC.DEEP_ARCHIVE, GIB, "2026-01-01T00:00", "2026-01-01T00:00", "0.0059401812744140625"),
        # 150 days used, 30 left: (1 GB + 32 KiB) * 0.00099
        (SC.DEEP_ARCHIVE, GIB, "2026-01-01T00:00", "2026-05-31T00:00", "0.00099003021240234375"),
        (SC.DEEP_ARCHIVE, GIB, "2026-01-01T00:00", "2026-06-30T00:00", "0"),
        (SC.DEEP_ARCHIVE, GIB, "2026-01-01T00:00", "2026-09-01T00:00", "0"),
        # stored "in the future" (clock skew): counts as stored today
        (SC.STANDARD_IA, GIB, "2026-01-05T00:00", "2026-01-01T00:00", "0.0125"),
        # no minimum duration
        (SC.STANDARD, GIB, "2026-01-01T00:00", "2026-01-01T00:00", "0"),
        (SC.INTELLIGENT_TIERING, GIB, "2026-01-01T00:00", "2026-01-01T00:00", "0"),
    ],
)  # fmt: skip
def test_early_deletion_charge(
    storage_class: StorageClass, size: int, stored_at: str, now: str, expected: str
) -> None:
    def parse(text: str) -> datetime:
        moment = datetime.fromisoformat(text)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    charge = early_deletion_charge(US, storage_class, size, parse(stored_at), parse(now))
    assert charge == Decimal(expected)


def test_early_deletion_needs_aware_datetimes() -> None:
    naive = datetime(2026, 1, 1)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match=r"^datetimes must be timezone-aware$"):
        early_deletion_charge(US, SC.GLACIER, GIB, naive, NOW)


def test_remaining_days_in_another_timezone() -> None:
    tokyo = timezone(timedelta(hours=9))
    # 2026-05-31T08:00+09:00 is 2026-05-30T23:00Z: two UTC days before NOW
    stored = datetime(2026, 5, 31, 8, 0, tzinfo=tokyo)
    assert remaining_minimum_days(SC.STANDARD_IA, stored, NOW) == 28


def test_exposure_equals_sum_of_charges() -> None:
    objects = [
        ArchivedObject(key="a", size=GIB, storage_class=SC.STANDARD_IA, last_modified=ago(15)),
        ArchivedObject(key="b", size=KIB, storage_class=SC.STANDARD_IA, last_modified=ago(0)),
        ArchivedObject(key="c", size=GIB, storage_class=SC.GLACIER, last_modified=ago(0, 6)),
        ArchivedObject(key="d", size=GIB, storage_class=SC.DEEP_ARCHIVE, last_modified=ago(150)),
        ArchivedObject(key="e", size=GIB, storage_class=SC.GLACIER_IR, last_modified=ago(100)),
        ArchivedObject(key="f", size=GIB, storage_class=SC.STANDARD, last_modified=ago(1)),
    ]
    charges = [
        early_deletion_charge(US, o.storage_class, o.size, o.last_modified, NOW) for o in objects
    ]
    exposure = early_deletion_exposure(US, summarize(objects, NOW))
    # 0.00625 + 0.00000152587890625 + 0.01080032958984375 + 0.00099003021240234375
    assert exposure == Decimal("0.01804188568115234375")
    assert exposure == sum(charges, Decimal(0))


def test_exposure_of_nothing() -> None:
    assert early_deletion_exposure(US, []) == Decimal(0)


# restore


@pytest.mark.parametrize(
    ("storage_class", "tier", "size", "days", "expected"),
    [
        # 0.03/GB + 10/1000 + the copy at 0.023 for 3 of 30 days (0.0023)
        (SC.GLACIER, RestoreTier.EXPEDITED, GIB, 3, "0.0423"),
        # 0.01 + 0.05/1000 + 0.023 for a whole month
        (SC.GLACIER, RestoreTier.STANDARD, GIB, 30, "0.03305"),
        # Bulk is free: only the copy, 0.023 * 15/30
        (SC.GLACIER, RestoreTier.BULK, GIB, 15, "0.0115"),
        # 0.02 + 0.10/1000 + 0.023 * 6/30
        (SC.DEEP_ARCHIVE, RestoreTier.STANDARD, GIB, 6, "0.0247"),
        # 2 GB: 0.005 + 0.025/1000 + 0.046 * 30/30
        (SC.DEEP_ARCHIVE, RestoreTier.BULK, 2 * GIB, 30, "0.051025"),
        # vault: GLACIER's retrieval prices, no copy to store: 0.03 + 0.01
        (SC.VAULT, RestoreTier.EXPEDITED, GIB, 7, "0.04"),
        (SC.VAULT, RestoreTier.BULK, GIB, 7, "0"),
        # instant classes: per GB + one GET; tier and days do not matter
        (SC.GLACIER_IR, RestoreTier.STANDARD, GIB, 1, "0.03001"),
        (SC.STANDARD_IA, RestoreTier.BULK, GIB, 30, "0.010001"),
        (SC.ONEZONE_IA, RestoreTier.STANDARD, 2 * GIB, 1, "0.020001"),
        (SC.STANDARD, RestoreTier.STANDARD, GIB, 1, "0.0000004"),
        (SC.INTELLIGENT_TIERING, RestoreTier.STANDARD, GIB, 1, "0.0000004"),
    ],
)
def test_restore_cost(
    storage_class: StorageClass, tier: RestoreTier, size: int, days: int, expected: str
) -> None:
    assert restore_cost(US, storage_class, tier, size, days) == Decimal(expected)


def test_expedited_deep_archive_is_rejected() -> None:
    with pytest.raises(ValueError, match="Expedited"):
        restore_cost(US, SC.DEEP_ARCHIVE, RestoreTier.EXPEDITED, GIB, 1)


def test_restore_needs_at_least_one_day() -> None:
    with pytest.raises(ValueError, match=r"^a restore lasts at least one day$"):
        restore_cost(US, SC.GLACIER, RestoreTier.BULK, GIB, 0)


def test_restored_copy_uses_the_standard_override() -> None:
    table = price_table("us-east-1", {"STANDARD": "0.03"})
    assert restore_cost(table, SC.GLACIER, RestoreTier.BULK, GIB, 30) == Decimal("0.03")


# upload requests


@pytest.mark.parametrize(
    ("region", "storage_class", "size", "part_size", "expected"),
    [
        ("us-east-1", SC.STANDARD, MIB, None, "0.000005"),
        # not larger than one part: a single PUT
        ("us-east-1", SC.STANDARD, 16 * MIB, 16 * MIB, "0.000005"),
        # 100 MiB in 16 MiB parts: 7 parts + initiate + complete = 9 * 0.005/1000
        ("us-east-1", SC.STANDARD, 100 * MIB, 16 * MIB, "0.000045"),
        # 100 MiB in 8 MiB parts: 13 parts, 15 requests * 0.02/1000
        ("us-east-1", SC.GLACIER_IR, 100 * MIB, 8 * MIB, "0.0003"),
        ("us-east-1", SC.DEEP_ARCHIVE, GIB, None, "0.00005"),
        # initiate + 7 parts at 0.005, complete at 0.05: (0.04 + 0.05)/1000
        ("us-east-1", SC.DEEP_ARCHIVE, 100 * MIB, 16 * MIB, "0.00009"),
        # eu-west-1's DEEP_ARCHIVE PUT is 0.055: (0.04 + 0.055)/1000
        ("eu-west-1", SC.DEEP_ARCHIVE, 100 * MIB, 16 * MIB, "0.000095"),
        ("eu-west-1", SC.GLACIER, GIB, None, "0.000033"),
        # FACTS has no eu-central-1 exception: us-east-1's 0.03
        ("eu-central-1", SC.GLACIER, GIB, None, "0.00003"),
    ],
)
def test_upload_request_cost(
    region: str, storage_class: StorageClass, size: int, part_size: int | None, expected: str
) -> None:
    table = price_table(region)
    assert upload_request_cost(table, storage_class, size, part_size) == Decimal(expected)


def test_part_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"^part_size must be positive$"):
        upload_request_cost(US, SC.STANDARD, MIB, 0)


# the table


def test_known_region() -> None:
    table = price_table("eu-central-1")
    assert (table.requested_region, table.priced_region, table.fallback) == (
        "eu-central-1",
        "eu-central-1",
        False,
    )
    assert table.date == date(2024, 9, 25)
    assert [rate for _, rate in table.standard_tiers] == [
        Decimal("0.0245"),
        Decimal("0.0235"),
        Decimal("0.0225"),
    ]
    assert table.storage[SC.DEEP_ARCHIVE] == Decimal("0.0018")
    assert table.storage[SC.INTELLIGENT_TIERING] == Decimal("0.0245")
    assert table.storage[SC.VAULT] == Decimal("0.0036")


def test_unknown_region_falls_back_to_us_east_1() -> None:
    table = price_table("sa-east-1")
    assert (table.requested_region, table.priced_region, table.fallback) == (
        "sa-east-1",
        "us-east-1",
        True,
    )
    assert table.storage == US.storage


def test_overrides_replace_storage_rates() -> None:
    table = price_table("us-east-1", {"STANDARD": "0.01", "glacier": 0.004})
    assert table.overridden == {SC.STANDARD, SC.GLACIER}
    # every STANDARD tier: 614400 GB * 0.01
    cost = monthly_cost(table, [ClassUsage(SC.STANDARD, 1, 600 * TB, 600 * TB)])
    assert cost.total == Decimal("6144")
    # a float override is taken at its decimal value: 0.004 + 0.004/32768 + 0.01/131072
    assert object_monthly_cost(table, SC.GLACIER, GIB) == Decimal("0.0040001983642578125")
    # other classes keep the table's rate
    assert table.storage[SC.DEEP_ARCHIVE] == Decimal("0.00099")


def test_standard_override_prices_glacier_metadata() -> None:
    table = price_table("us-east-1", {"STANDARD": Decimal("0.01")})
    # 0.0036 + 0.0036/32768 + 0.01/131072
    assert object_monthly_cost(table, SC.GLACIER, GIB) == Decimal("0.0036001861572265625")


@pytest.mark.parametrize(
    "overrides",
    [{"REDUCED_REDUNDANCY": "0.01"}, {"STANDARD": "-0.01"}, {"STANDARD": "cheap"},
     {"STANDARD": float("nan")}, {"STANDARD": "Infinity"}],
)  # fmt: skip
def test_bad_overrides_are_rejected(overrides: dict[str, str | float]) -> None:
    with pytest.raises(ValueError, match=r"storage class|price"):
        price_table("us-east-1", overrides)


# -- restores: Intelligent-Tiering archive tiers, egress, the breakdown -----------------


@pytest.mark.parametrize(
    ("source", "tier", "expected"),
    [
        # Standard and Bulk restores of the archive tiers are free; no copy is billed.
        (ArchiveStatus.ARCHIVE_ACCESS, RestoreTier.STANDARD, Decimal(0)),
        (ArchiveStatus.ARCHIVE_ACCESS, RestoreTier.BULK, Decimal(0)),
        (ArchiveStatus.DEEP_ARCHIVE_ACCESS, RestoreTier.STANDARD, Decimal(0)),
        (ArchiveStatus.DEEP_ARCHIVE_ACCESS, RestoreTier.BULK, Decimal(0)),
        # Expedited like GLACIER's: 1 GiB * 0.03 + 10 / 1000
        (ArchiveStatus.ARCHIVE_ACCESS, RestoreTier.EXPEDITED, Decimal("0.04")),
    ],
)
def test_restore_of_archive_tiers(
    source: ArchiveStatus, tier: RestoreTier, expected: Decimal
) -> None:
    estimate = restore_estimate(US, source, tier, GIB, copy_days=7, download=False)
    assert estimate.total == expected
    assert estimate.copy_storage == 0


def test_no_expedited_for_deep_archive_access() -> None:
    with pytest.raises(ValueError, match="Expedited"):
        restore_estimate(
            US,
            ArchiveStatus.DEEP_ARCHIVE_ACCESS,
            RestoreTier.EXPEDITED,
            GIB,
            copy_days=0,
            download=False,
        )


def test_restore_estimate_breakdown_with_download() -> None:
    """GLACIER Standard, 2 GiB, 3 days, downloaded: every charge on its own line."""
    estimate = restore_estimate(
        US, SC.GLACIER, RestoreTier.STANDARD, 2 * GIB, copy_days=3, download=True
    )
    assert estimate == RestoreEstimate(
        retrieval=Decimal("0.02"),  # 2 * 0.01
        requests=Decimal("0.0000504"),  # 0.05 / 1000 + GET 0.0004 / 1000
        copy_storage=Decimal("0.0046"),  # 2 * 0.023 * 3 / 30
        egress=Decimal("0.18"),  # 2 * 0.09
    )
    assert estimate.total == Decimal("0.2046504")


def test_restore_estimate_of_a_restored_copy_asked_again() -> None:
    """Asking again costs the request and the days the copy lives longer, no retrieval."""
    estimate = restore_estimate(
        US, SC.DEEP_ARCHIVE, RestoreTier.BULK, GIB, copy_days=6, download=False, retrieve=False
    )
    # 0.025 / 1000 + 1 * 0.023 * 6 / 30
    assert estimate.total == Decimal("0.004625")
    assert estimate.retrieval == 0


@pytest.mark.parametrize(
    ("region", "rate"),
    [
        ("us-east-1", "0.09"),
        ("eu-west-1", "0.09"),
        ("eu-central-1", "0.09"),
        ("ap-southeast-2", "0.114"),
        ("sa-east-1", "0.09"),  # unknown: us-east-1's
    ],
)
def test_egress_per_region(region: str, rate: str) -> None:
    table = price_table(region)
    assert table.egress_per_gb == Decimal(rate)
    estimate = restore_estimate(
        table, SC.STANDARD, RestoreTier.STANDARD, GIB, copy_days=0, download=True
    )
    assert estimate.egress == Decimal(rate)
    assert EGRESS_FREE_GB_PER_MONTH == 100


def test_instant_class_download_includes_egress() -> None:
    # GLACIER_IR 1 GiB: 0.03 retrieval + 0.01 / 1000 GET + 0.09 egress
    estimate = restore_estimate(
        US, SC.GLACIER_IR, RestoreTier.STANDARD, GIB, copy_days=0, download=True
    )
    assert estimate.total == Decimal("0.12001")


def test_monthly_cost_includes_restored_copies() -> None:
    """A restored copy is billed at the STANDARD rate on top of the archived object."""
    usage = [ClassUsage(SC.GLACIER, 1, GIB, GIB + 32 * KIB)]
    without = monthly_cost(US, usage)
    with_copy = monthly_cost(US, usage, {SC.GLACIER: GIB})
    assert with_copy.total - without.total == Decimal("0.023")
    assert with_copy.restored_copies == Decimal("0.023")
    assert with_copy.by_class[SC.GLACIER] - without.by_class[SC.GLACIER] == Decimal("0.023")


def test_restored_copy_bytes_counts_live_copies_only() -> None:
    def obj(key: str, sc: SC, state: RestoreState, expiry: datetime | None) -> ArchivedObject:
        return ArchivedObject(
            key=key,
            size=GIB,
            storage_class=sc,
            last_modified=NOW - timedelta(days=200),
            restore_state=state,
            restore_expiry=expiry,
        )

    objects = [
        obj("live", SC.GLACIER, RestoreState.RESTORED, NOW + timedelta(days=1)),
        obj("unknown", SC.DEEP_ARCHIVE, RestoreState.RESTORED, None),
        obj("expired", SC.GLACIER, RestoreState.RESTORED, NOW),
        obj("running", SC.GLACIER, RestoreState.IN_PROGRESS, None),
        obj("instant", SC.STANDARD, RestoreState.RESTORED, NOW + timedelta(days=1)),
    ]
    assert restored_copy_bytes(objects, NOW) == {SC.GLACIER: GIB, SC.DEEP_ARCHIVE: GIB}


# -- the rules mutation testing found unpinned (scripts/mutate) -------------------------


def test_bytes_at_the_standard_rate_fill_the_tiers_in_order() -> None:
    """GLACIER metadata, DEEP_ARCHIVE metadata, restored copies, then STANDARD objects.

    Empty GLACIER and DEEP_ARCHIVE objects (32 KiB billed at the class rate, 8 KiB of
    metadata at the STANDARD rate) so the metadata alone reaches the 50 TB tier:
    GLACIER 30 * 2**27 objects: 120 TB = 122880 GB at 0.0036 = 442.368, metadata
    [0, 30 TB) at 0.023 = 706.56, its restored 5 TB [40, 45 TB) at 0.023 = 117.76.
    DEEP_ARCHIVE 10 * 2**27 objects: 40 TB = 40960 GB at 0.00099 = 40.5504, metadata
    [30, 40 TB) at 0.023 = 235.52, its restored 5 TB [45, 50 TB) = 117.76.
    STANDARD 10 TB [50, 60 TB) at 0.022 = 225.28.
    """
    glacier_objects = 30 * 2**27
    deep_objects = 10 * 2**27
    usages = [
        ClassUsage(SC.GLACIER, glacier_objects, 0, glacier_objects * 32 * KIB),
        ClassUsage(SC.DEEP_ARCHIVE, deep_objects, 0, deep_objects * 32 * KIB),
        ClassUsage(SC.STANDARD, 1, 10 * TB, 10 * TB),
    ]
    cost = monthly_cost(US, usages, {SC.GLACIER: 5 * TB, SC.DEEP_ARCHIVE: 5 * TB})
    assert dict(cost.by_class) == {
        SC.STANDARD: Decimal("225.28"),
        SC.GLACIER: Decimal("1266.688"),
        SC.DEEP_ARCHIVE: Decimal("393.8304"),
    }
    assert cost.restored_copies == Decimal("235.52")
    assert cost.total == Decimal("1885.7984")


def test_restored_copy_of_a_class_without_usage() -> None:
    cost = monthly_cost(US, [], {SC.GLACIER: GIB})
    assert dict(cost.by_class) == {SC.GLACIER: Decimal("0.023")}
    assert cost.total == Decimal("0.023")


def test_nothing_costs_a_decimal_zero() -> None:
    """Money stays Decimal even when there is nothing to add up (no int, no float)."""
    cost = monthly_cost(US, [])
    assert (type(cost.total), cost.total, dict(cost.by_class)) == (Decimal, 0, {})
    exposure = early_deletion_exposure(US, [])
    assert (type(exposure), exposure) == (Decimal, 0)


def test_a_zero_rate_override_is_accepted() -> None:
    table = price_table("us-east-1", {"GLACIER": 0})
    assert table.storage[SC.GLACIER] == 0
    # only the 8 KiB of metadata at the STANDARD rate is left: 0.023 / 131072
    assert object_monthly_cost(table, SC.GLACIER, GIB) == Decimal("0.00000017547607421875")


def test_archive_tier_download_reads_at_the_intelligent_tiering_get_price() -> None:
    # Expedited: 0.03 + 10 / 1000, the GET 0.0004 / 1000, egress 0.09
    estimate = restore_estimate(
        US, ArchiveStatus.ARCHIVE_ACCESS, RestoreTier.EXPEDITED, GIB, copy_days=0, download=True
    )
    assert estimate == RestoreEstimate(
        retrieval=Decimal("0.03"),
        requests=Decimal("0.0100004"),
        egress=Decimal("0.09"),
    )


def test_reading_a_restored_copy_without_asking_costs_nothing() -> None:
    estimate = restore_estimate(
        US,
        SC.GLACIER,
        RestoreTier.STANDARD,
        GIB,
        copy_days=0,
        download=False,
        retrieve=False,
        request=False,
    )
    assert estimate == RestoreEstimate()
    assert estimate.total == 0


def test_negative_copy_days_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"^copy_days must not be negative$"):
        restore_estimate(US, SC.GLACIER, RestoreTier.BULK, GIB, copy_days=-1, download=False)


def test_one_byte_parts() -> None:
    # 3 bytes in 1-byte parts: initiate + 3 parts + complete = 5 * 0.005 / 1000
    assert upload_request_cost(US, SC.STANDARD, 3, 1) == Decimal("0.000025")


def test_restored_copy_bytes_goes_on_past_what_it_skips() -> None:
    """Skipped objects (expired, still running, another class) do not end the count."""

    def obj(key: str, sc: SC, state: RestoreState, expiry: datetime | None) -> ArchivedObject:
        return ArchivedObject(
            key=key,
            size=GIB,
            storage_class=sc,
            last_modified=NOW - timedelta(days=200),
            restore_state=state,
            restore_expiry=expiry,
        )

    later = NOW + timedelta(days=1)
    for skipped in (
        obj("expired", SC.GLACIER, RestoreState.RESTORED, NOW),
        obj("running", SC.GLACIER, RestoreState.IN_PROGRESS, None),
        obj("instant", SC.STANDARD, RestoreState.RESTORED, later),
    ):
        live = obj("live", SC.GLACIER, RestoreState.RESTORED, later)
        assert restored_copy_bytes([skipped, live], NOW) == {SC.GLACIER: GIB}, skipped.key


class _NoOffset(tzinfo):
    """A tzinfo that does not know its offset: such a datetime is naive in effect."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def test_a_datetime_without_offset_is_not_aware() -> None:
    unknown = datetime(2026, 1, 1, tzinfo=_NoOffset())
    with pytest.raises(ValueError, match=r"^datetimes must be timezone-aware$"):
        remaining_minimum_days(SC.GLACIER, unknown, NOW)
