"""What the actions share: field names, error translation, progress logs, formatting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from typing import Any, NoReturn

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from .archive.errors import AccessDeniedError, ArchiveError, AuthError
from .archive.models import ArchiveStatus, RestoreSource, StorageClass
from .archive.pricing import EGRESS_FREE_GB_PER_MONTH, RestoreEstimate
from .const import DOMAIN, LOGGER
from .data import S3GlacierConfigEntry
from .helpers import option_value, parse_option
from .paths import invalid
from .permissions import async_report_denied
from .translate import translated

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_PATH = "path"
ATTR_KEY = "key"
ATTR_ARCHIVE_ID = "archive_id"
ATTR_STORAGE_CLASS = "storage_class"
ATTR_OVERWRITE = "overwrite"
ATTR_DELETE_SOURCE = "delete_source"
ATTR_DESTINATION = "destination"
ATTR_TIER = "tier"
ATTR_DAYS = "days"
ATTR_PREFIX = "prefix"
ATTR_LIMIT = "limit"

MAX_DAYS = 365
# A restored copy's days when the call gives none.
DEFAULT_DAYS = 1
MAX_LIMIT = 10_000
MIB = 1024 * 1024


def raise_translated(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, err: Exception, **placeholders: str
) -> NoReturn:
    """Raise ``err`` as a translated error.

    Only refused keys start a reauth; a policy that lacks an action (the keys are
    fine) raises a repair issue naming the action instead.
    """
    if isinstance(err, AuthError):
        LOGGER.debug("%s: the service refused the keys (%s)", entry.title, err)
        entry.async_start_reauth(hass)
    elif isinstance(err, AccessDeniedError):
        async_report_denied(hass, entry, err)
    if isinstance(err, ArchiveError):
        raise translated(HomeAssistantError, err, **placeholders) from err
    if isinstance(err, FileExistsError):
        raise invalid("destination_exists", path=err.filename or placeholders.get("key")) from err
    if isinstance(err, OSError):
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="file_error",
            translation_placeholders={
                "path": str(err.filename or placeholders.get("key", "")),
                "error": err.strerror or type(err).__name__,
            },
        ) from err
    raise err


@contextmanager
def remote_errors(
    hass: HomeAssistant, entry: S3GlacierConfigEntry, **placeholders: str
) -> Iterator[None]:
    """Translate engine and file errors raised in the block, naming ``key`` in them."""
    try:
        yield
    except (ArchiveError, OSError) as err:
        raise_translated(hass, entry, err, **placeholders)


def choice[E: StrEnum](value: str, allowed: tuple[E, ...], problem: str) -> E:
    """Return the allowed value ``value`` names, else raise ``problem``.

    Both spellings are accepted: the lower-case option values the UI offers
    (``glacier_ir``, ``expedited``) and AWS's names that earlier versions used
    (``GLACIER_IR``, ``Expedited``), so existing automations keep working.
    """
    if (member := parse_option(value, allowed)) is not None:
        return member
    raise invalid(problem, value=value, allowed=", ".join(option_value(c) for c in allowed))


class ProgressLog:
    """Logs a long transfer's progress at debug level, every tenth of the way."""

    def __init__(self, verb: str, key: str, size: int) -> None:
        """Log ``verb key`` progress for a transfer of ``size`` bytes."""
        self._verb, self._key, self._size = verb, key, size
        self._next = 0.1

    def __call__(self, done: int) -> None:
        """Take the bytes done so far (from any thread)."""
        if self._size < 64 * MIB or done < self._next * self._size:
            return
        self._next = (done // (self._size / 10) + 1) / 10
        LOGGER.debug("%s %s: %d%%", self._verb, self._key, 100 * done // self._size)


# Money is shown rounded *up* to a hundredth of a cent: a cost below that never reads
# zero, and a float of at least 0.0001 never prints in scientific notation.
MONEY_STEP = Decimal("0.0001")
_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def round_money(value: Decimal) -> Decimal:
    """USD rounded up to the next hundredth of a cent (zero stays zero)."""
    return value.quantize(MONEY_STEP, rounding=ROUND_CEILING)


def money(value: Decimal) -> float:
    """Money for a response or attribute: a float (automations compute with it)."""
    return float(round_money(value))


def human_size(size: int) -> str:
    """A size as a person reads it: ``43 B``, ``1.46 KiB``, ``11.1 MiB``, ``120 GiB``."""
    value = float(size)
    for unit in _SIZE_UNITS:
        if round(value) < 1024 or unit == _SIZE_UNITS[-1]:
            break
        value /= 1024
    if unit == "B":
        return f"{size} B"
    # Three significant digits; never scientific notation (1000-1023 stay whole).
    text = f"{value:.0f}" if value >= 100 else f"{value:.3g}"
    return f"{text} {unit}"


def restore_cost_fields(estimate: RestoreEstimate) -> dict[str, Any]:
    """A restore estimate as responses show it: ``estimated_cost`` and ``cost_breakdown``.

    Each charge is rounded up like any amount, and the total is the sum of the charges
    as shown, so that the lines a person reads add up. Egress is priced as if the
    account's free monthly allowance were used up: it is shared by the whole AWS
    account, so this integration cannot know what is left.
    """
    charges = {
        "retrieval": round_money(estimate.retrieval),
        "requests": round_money(estimate.requests),
        "copy_storage": round_money(estimate.copy_storage),
        "egress": round_money(estimate.egress),
    }
    return {
        "estimated_cost": float(sum(charges.values(), Decimal(0))),
        "cost_breakdown": {
            **{name: float(value) for name, value in charges.items()},
            "egress_free_gb_per_month": EGRESS_FREE_GB_PER_MONTH,
        },
    }


# AWS's names for the storage classes, as the sensors and options show them.
CLASS_NAMES: dict[RestoreSource, str] = {
    StorageClass.STANDARD: "Standard",
    StorageClass.STANDARD_IA: "Standard-Infrequent Access",
    StorageClass.ONEZONE_IA: "One Zone-Infrequent Access",
    StorageClass.INTELLIGENT_TIERING: "Intelligent-Tiering",
    StorageClass.GLACIER_IR: "Glacier Instant Retrieval",
    StorageClass.GLACIER: "Glacier Flexible Retrieval",
    StorageClass.DEEP_ARCHIVE: "Glacier Deep Archive",
    StorageClass.VAULT: "the Glacier vault",
    ArchiveStatus.ARCHIVE_ACCESS: "Intelligent-Tiering Archive Access",
    ArchiveStatus.DEEP_ARCHIVE_ACCESS: "Intelligent-Tiering Deep Archive Access",
}


def class_name(source: RestoreSource) -> str:
    """AWS's name of a storage class or Intelligent-Tiering archive tier."""
    return CLASS_NAMES[source]


def iso(moment: datetime | None) -> str | None:
    """A time for a response or event: ISO 8601 to the second, or None."""
    return moment.isoformat(timespec="seconds") if moment else None


def check_limit(limit: int) -> int:
    """Return ``limit`` if it is a valid list limit, else raise ``invalid_limit``."""
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid("invalid_limit", limit=limit, max=MAX_LIMIT)
    return limit
