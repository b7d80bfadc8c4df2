"""Glue between config entry data and the engine (no event-loop code here)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
import re
from typing import Any, NamedTuple

from .archive.client import GrantedActions, make_client
from .archive.models import (
    MIB,
    Credentials,
    ServerSideEncryption,
    StorageClass,
    TransferOptions,
)
from .archive.s3 import S3Target
from .archive.vault import VaultTarget, check_part_size
from .const import (
    CONF_ACCESS_KEY_ID,
    CONF_BUCKET,
    CONF_CONCURRENCY,
    CONF_ENCRYPTION,
    CONF_ENDPOINT_URL,
    CONF_KMS_KEY_ID,
    CONF_PART_SIZE_MIB,
    CONF_PREFIX,
    CONF_REGION,
    CONF_SECRET_ACCESS_KEY,
    CONF_TARGET,
    CONF_VAULT_NAME,
    DEFAULT_CONCURRENCY,
    DEFAULT_ENCRYPTION,
    DEFAULT_PART_SIZE_MIB,
    DEFAULT_VAULT_PART_SIZE_MIB,
    TARGET_VAULT,
)

type Target = S3Target | VaultTarget

_NOT_IN_OPTION = re.compile(r"[^a-z0-9]+")


class Connected(NamedTuple):
    """A checked target, and the entry data with the location the service reported."""

    target: Target
    data: Mapping[str, Any]


def option_value(aws_name: str) -> str:
    """The option value standing for one of AWS's names: lower case, [a-z0-9_].

    ``GLACIER_IR`` → ``glacier_ir``, ``aws:kms`` → ``aws_kms``, ``Expedited`` →
    ``expedited``. Stored options, selectors and actions use these; the engine keeps
    AWS's names.
    """
    return _NOT_IN_OPTION.sub("_", aws_name.strip().lower()).strip("_")


def parse_option[E: StrEnum](value: str, allowed: Iterable[E]) -> E | None:
    """The member of ``allowed`` that ``value`` names, in AWS's or the option's spelling."""
    wanted = option_value(value)
    return next((member for member in allowed if option_value(member) == wanted), None)


def is_vault(data: Mapping[str, Any]) -> bool:
    """Whether entry data describes a legacy Glacier vault (else an S3 bucket)."""
    return data.get(CONF_TARGET) == TARGET_VAULT


def normalize_prefix(prefix: str | None) -> str:
    """Return the key prefix without surrounding slashes ('' when unset)."""
    return (prefix or "").strip().strip("/")


def credentials_from_data(data: Mapping[str, Any]) -> Credentials:
    """Build engine credentials from config entry data."""
    return Credentials(
        access_key_id=data[CONF_ACCESS_KEY_ID],
        secret_access_key=data[CONF_SECRET_ACCESS_KEY],
        region=data[CONF_REGION],
        endpoint_url=data.get(CONF_ENDPOINT_URL) or None,
    )


def connect_bucket(
    data: Mapping[str, Any],
    max_attempts: int | None = None,
    *,
    granted: GrantedActions | None = None,
) -> Connected:
    """Create the client and check the bucket answers. Blocking: run in the executor.

    On AWS the bucket's own region (HeadBucket's ``x-amz-bucket-region``) replaces the
    one entered: botocore follows the redirect, so a wrong region would otherwise
    pass, price the bucket for the wrong region and let it be added twice.
    """
    client = make_client(
        "s3", credentials_from_data(data), max_attempts=max_attempts, granted=granted
    )
    target = S3Target(client, data[CONF_BUCKET], normalize_prefix(data.get(CONF_PREFIX)))
    region = _checked(target, target.check)
    if region and not data.get(CONF_ENDPOINT_URL) and region != data[CONF_REGION]:
        data = {**data, CONF_REGION: region}
    return Connected(target, data)


def connect_vault(
    data: Mapping[str, Any],
    options: Mapping[str, Any] | None = None,
    max_attempts: int | None = None,
    *,
    granted: GrantedActions | None = None,
) -> Connected:
    """Create the Glacier client and check the vault answers. Blocking: run in the executor."""
    options = options or {}
    client = make_client(
        "glacier", credentials_from_data(data), max_attempts=max_attempts, granted=granted
    )
    target = VaultTarget(client, data[CONF_VAULT_NAME])
    apply_vault_options(target, options)
    _checked(target, target.check)
    return Connected(target, data)


def apply_vault_options(target: VaultTarget, options: Mapping[str, Any]) -> None:
    """Set a vault's part size and upload threads from the entry's options."""
    target.part_size = check_part_size(
        int(options.get(CONF_PART_SIZE_MIB, DEFAULT_VAULT_PART_SIZE_MIB)) * MIB
    )
    target.concurrency = max(1, int(options.get(CONF_CONCURRENCY, DEFAULT_CONCURRENCY)))


def _checked[R](target: Target, check: Callable[[], R]) -> R:
    """Run the target's check; close its client if it does not answer."""
    try:
        return check()
    except BaseException:
        target.close()
        raise


def connect(
    data: Mapping[str, Any],
    options: Mapping[str, Any] | None = None,
    max_attempts: int | None = None,
    *,
    granted: GrantedActions | None = None,
) -> Connected:
    """Connect to the entry's bucket or vault. Blocking: run in the executor.

    ``granted`` records the IAM actions the target's requests are allowed.
    """
    if is_vault(data):
        return connect_vault(data, options, max_attempts, granted=granted)
    return connect_bucket(data, max_attempts, granted=granted)


def entry_title(data: Mapping[str, Any]) -> str:
    """Title of an entry: the vault, or the bucket plus '/prefix' when one is set."""
    if is_vault(data):
        return str(data[CONF_VAULT_NAME])
    prefix = normalize_prefix(data.get(CONF_PREFIX))
    return f"{data[CONF_BUCKET]}/{prefix}" if prefix else data[CONF_BUCKET]


def unique_id_from_data(data: Mapping[str, Any]) -> str:
    """Where the entry archives: endpoint (or AWS region), then bucket and prefix, or vault."""
    location = (data.get(CONF_ENDPOINT_URL) or "").rstrip("/") or data[CONF_REGION]
    if is_vault(data):
        return f"{location}|vault|{data[CONF_VAULT_NAME]}"
    return f"{location}|{data[CONF_BUCKET]}|{normalize_prefix(data.get(CONF_PREFIX))}"


def transfer_options(options: Mapping[str, Any], storage_class: StorageClass) -> TransferOptions:
    """How an entry's uploads in ``storage_class`` are made: encryption and parts."""
    encryption = options.get(CONF_ENCRYPTION, DEFAULT_ENCRYPTION)
    return TransferOptions(
        storage_class=storage_class,
        encryption=parse_option(encryption, ServerSideEncryption) or ServerSideEncryption.AES256,
        kms_key_id=options.get(CONF_KMS_KEY_ID),
        part_size=int(options.get(CONF_PART_SIZE_MIB, DEFAULT_PART_SIZE_MIB)) * MIB,
        concurrency=int(options.get(CONF_CONCURRENCY, DEFAULT_CONCURRENCY)),
    )
