"""Glue between config entry data and the engine (no event-loop code here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .archive.client import make_client
from .archive.models import Credentials
from .archive.s3 import S3Target
from .const import (
    CONF_ACCESS_KEY_ID,
    CONF_BUCKET,
    CONF_ENDPOINT_URL,
    CONF_PREFIX,
    CONF_REGION,
    CONF_SECRET_ACCESS_KEY,
)


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


def connect_bucket(data: Mapping[str, Any], max_attempts: int | None = None) -> S3Target:
    """Create the client and check the bucket answers. Blocking: run in the executor."""
    client = make_client("s3", credentials_from_data(data), max_attempts=max_attempts)
    target = S3Target(client, data[CONF_BUCKET], normalize_prefix(data.get(CONF_PREFIX)))
    target.check()
    return target


def entry_title(data: Mapping[str, Any]) -> str:
    """Title of an entry: the bucket, plus '/prefix' when one is set."""
    prefix = normalize_prefix(data.get(CONF_PREFIX))
    return f"{data[CONF_BUCKET]}/{prefix}" if prefix else data[CONF_BUCKET]


def unique_id_from_data(data: Mapping[str, Any]) -> str:
    """Where the entry archives: endpoint (or AWS region), bucket and prefix."""
    location = (data.get(CONF_ENDPOINT_URL) or "").rstrip("/") or data[CONF_REGION]
    return f"{location}|{data[CONF_BUCKET]}|{normalize_prefix(data.get(CONF_PREFIX))}"
