"""Credentials → boto3 client, in one place.

Creating a client reads botocore's JSON service models from disk, so callers run
this in the executor.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import InvalidRegionError as BotoInvalidRegionError

from .errors import InvalidEndpointError, InvalidRegionError, aws_errors
from .models import Credentials

# Retries with backoff for throttling and dropped connections; a cut transfer must
# still end in an error within a bounded time.
DEFAULT_MAX_ATTEMPTS = 5
_CONNECT_TIMEOUT = 10
_READ_TIMEOUT = 60


def validate_endpoint_url(url: str) -> str:
    """Return the URL if it is an absolute http(s) URL with a host, else raise."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidEndpointError("endpoint must be an http(s) URL with a host")
    if parsed.username or parsed.password:
        # Credentials belong in the key fields: a URL is shown and logged.
        raise InvalidEndpointError("endpoint must not contain a user name or password")
    try:
        _ = parsed.port  # raises on a malformed port
    except ValueError as err:
        raise InvalidEndpointError("endpoint port is malformed") from err
    return url


def make_client(
    service: str,
    credentials: Credentials,
    *,
    max_pool: int = 10,
    max_attempts: int | None = None,
) -> Any:
    """Build a boto3 client for ``service`` ("s3" or "glacier").

    ``max_attempts`` defaults to ``DEFAULT_MAX_ATTEMPTS`` (read at call time); a form
    that checks credentials passes 1 so the user hears back at once.
    """
    endpoint = credentials.endpoint_url
    if endpoint:
        validate_endpoint_url(endpoint)
    attempts = DEFAULT_MAX_ATTEMPTS if max_attempts is None else max_attempts
    config = Config(
        region_name=credentials.region,
        # total_max_attempts counts the first request; botocore's max_attempts counts
        # only the retries after it.
        retries={"total_max_attempts": attempts, "mode": "standard"},
        connect_timeout=_CONNECT_TIMEOUT,
        read_timeout=_READ_TIMEOUT,
        max_pool_connections=max_pool,
        # S3-compatible services often reject the CRC32 botocore >= 1.36 adds to
        # every request; our own SHA-256 covers integrity end to end.
        request_checksum_calculation="when_required" if endpoint else "when_supported",
        response_checksum_validation="when_required" if endpoint else "when_supported",
        s3={"addressing_style": "path"} if endpoint else {},
    )
    with aws_errors():
        session = boto3.session.Session(
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            region_name=credentials.region,
        )
        try:
            return session.client(service, endpoint_url=endpoint or None, config=config)
        except BotoInvalidRegionError as err:
            raise InvalidRegionError("malformed region name") from err
        except ValueError as err:  # botocore's own check of the endpoint URL
            raise InvalidEndpointError(str(err)) from err
