"""One exception tree for the engine, and the one place AWS errors are mapped onto it.

Each error carries a ``translation_key`` that the Home Assistant shell turns into a
translated message, and ``placeholders`` for that message. Messages never contain
credentials.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError as BotoConnectionError,
    ConnectTimeoutError,
    EndpointConnectionError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    InvalidEndpointConfigurationError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)


class ArchiveError(Exception):
    """Base of every error the engine raises."""

    translation_key = "unknown"

    def __init__(self, message: str = "", **placeholders: Any) -> None:
        """Keep the message (never a secret) and the translation placeholders."""
        super().__init__(message or self.__class__.__name__)
        self.placeholders = {k: str(v) for k, v in placeholders.items()}


class AuthError(ArchiveError):
    """The credentials are wrong, expired or revoked."""

    translation_key = "invalid_auth"


class AccessDeniedError(ArchiveError):
    """The credentials are valid but not allowed to do this."""

    translation_key = "access_denied"


class CannotConnectError(ArchiveError):
    """The endpoint cannot be reached (DNS, refused, timeout, cut connection)."""

    translation_key = "cannot_connect"


class InvalidEndpointError(ArchiveError):
    """The endpoint URL is malformed."""

    translation_key = "invalid_endpoint"


class InvalidRegionError(ArchiveError):
    """The region name is malformed."""

    translation_key = "invalid_region"


class InvalidRequestError(ArchiveError):
    """botocore refused the request before sending it (e.g. a malformed bucket name)."""

    translation_key = "invalid_request"


class ThrottledError(ArchiveError):
    """The service still refused after the client's retries (SlowDown, quotas)."""

    translation_key = "throttled"


class NotFoundError(ArchiveError):
    """An object (key or archive) does not exist."""

    translation_key = "key_not_found"


class BucketNotFoundError(NotFoundError):
    """The bucket does not exist."""

    translation_key = "bucket_not_found"


class VaultNotFoundError(NotFoundError):
    """The Glacier vault does not exist."""

    translation_key = "vault_not_found"


class JobNotFoundError(NotFoundError):
    """A Glacier vault job is unknown or has expired (its output is kept about 24 h)."""

    translation_key = "job_not_found"


class ServiceUnavailableError(ArchiveError):
    """The service refuses this account (Glacier vaults are closed to new customers)."""

    translation_key = "vault_service_unavailable"


class NotRestoredError(ArchiveError):
    """An archived object must be restored before it can be read."""

    translation_key = "not_restored"


class ObjectExistsError(ArchiveError):
    """A different object is already stored under this key."""

    translation_key = "object_exists"


class ChecksumMismatchError(ArchiveError):
    """Bytes read back do not match the checksum recorded at upload."""

    translation_key = "checksum_mismatch"


# Error codes S3 (and S3-compatible services) answer with, by meaning.
_AUTH_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "AuthFailure",
    }
)
_ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "AllAccessDisabled"})
_THROTTLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
    }
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404", "ResourceNotFoundException"})
# Glacier's answer to accounts that never used vaults (closed since 2025-12-15).
_NO_LONGER_SUPPORTED_CODES = frozenset({"NoLongerSupportedException"})


def error_code(err: ClientError) -> str:
    """Return the error code of a ``ClientError`` ('' when the service sent none)."""
    return str(err.response.get("Error", {}).get("Code", ""))


def map_client_error(err: ClientError) -> ArchiveError:
    """Map a botocore ``ClientError`` to the engine's exception tree."""
    code = error_code(err)
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in _AUTH_CODES:
        return AuthError(code)
    if code == "NoSuchBucket":
        return BucketNotFoundError(code)
    if code in _ACCESS_DENIED_CODES:
        return AccessDeniedError(code)
    if code in _NO_LONGER_SUPPORTED_CODES:
        return ServiceUnavailableError(code)
    if code in _THROTTLE_CODES or status == 503:
        return ThrottledError(code or "503")
    if code == "InvalidObjectState":
        return NotRestoredError(code)
    if code in _NOT_FOUND_CODES:
        return NotFoundError(code)
    if code == "403" or status == 403:
        # HEAD requests carry no body, so a bad key or signature is only a bare 403.
        return AuthError(code or "403")
    return ArchiveError(code or f"HTTP {status}")


def map_botocore_error(err: Exception) -> ArchiveError:
    """Map any botocore exception (client or transport) to the engine's tree."""
    if isinstance(err, ArchiveError):
        return err
    if isinstance(err, ClientError):
        return map_client_error(err)
    if isinstance(err, InvalidEndpointConfigurationError):
        return InvalidEndpointError(type(err).__name__)
    if isinstance(err, ParamValidationError):
        return InvalidRequestError(type(err).__name__)
    if isinstance(err, NoCredentialsError):
        return AuthError(type(err).__name__)
    if isinstance(err, FlexibleChecksumError):
        return ChecksumMismatchError(type(err).__name__)
    if isinstance(
        err,
        (
            EndpointConnectionError,
            ConnectTimeoutError,
            ReadTimeoutError,
            BotoConnectionError,
            # A stream cut mid-body: ResponseStreamingError, ConnectionClosedError, ...
            HTTPClientError,
            IncompleteReadError,
        ),
    ):
        return CannotConnectError(type(err).__name__)
    if isinstance(err, BotoCoreError):
        return ArchiveError(type(err).__name__)
    raise TypeError(f"not a botocore error: {type(err).__name__}")


@contextmanager
def aws_errors() -> Iterator[None]:
    """Re-raise botocore exceptions inside the block as ``ArchiveError``s."""
    try:
        yield
    except (ClientError, BotoCoreError) as err:
        raise map_botocore_error(err) from err


class ObjectChangedError(ArchiveError):
    """Another writer replaced (or removed) the object at this key during our upload."""

    translation_key = "object_changed"


class FileTooLargeError(ArchiveError):
    """The file is larger than the target can store as one object or archive."""

    translation_key = "file_too_large"
