"""One exception tree for the engine, and the one place AWS errors are mapped onto it.

Each error carries a ``translation_key`` that the Home Assistant shell turns into a
translated message, and ``placeholders`` for that message. Messages never contain
credentials.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import re
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
    """The credentials are wrong, expired or revoked: only new keys help."""

    translation_key = "invalid_auth"


class AccessDeniedError(ArchiveError):
    """The credentials are valid but their policy does not allow this request.

    ``action`` is the IAM action that was refused (``s3:ListBucketMultipartUploads``):
    the user fixes the policy, not the keys.
    """

    translation_key = "access_denied"

    def __init__(self, message: str = "", *, action: str, **placeholders: Any) -> None:
        """Keep the refused IAM action, also as the ``{action}`` placeholder."""
        super().__init__(message, action=action, **placeholders)
        self.action = action


class AlreadyActiveTierError(ArchiveError):
    """A restore was asked for an object that needs none (it is in an active tier)."""

    translation_key = "already_active_tier"


class ExpeditedUnavailableError(ArchiveError):
    """No Expedited retrieval capacity right now; Standard would be accepted."""

    translation_key = "expedited_unavailable"


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
# Refused keys: S3's codes, then Glacier's (a JSON service) for the same cases.
_AUTH_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "UnrecognizedClientException",
        "InvalidSignatureException",
    }
)
# "Allowed to log in, not to do this": a policy to fix, never a reauth.
_ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "AllAccessDisabled"})
# The requests that check a target at setup and every few minutes. A HEAD answer has
# no body, so refused keys there are only a bare 403 (no code); on any other request a
# bare 403 means the policy refused it.
_SETUP_CHECK_OPERATIONS = frozenset({"HeadBucket", "DescribeVault"})
# No Expedited capacity now (S3 answers 503, a vault 400). Retrying the same request
# at once cannot help: the client's retries skip these and the user hears at once.
EXPEDITED_UNAVAILABLE_CODES = frozenset(
    {"GlacierExpeditedRetrievalNotAvailable", "InsufficientCapacityException"}
)
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


def means_refused_keys(code: str) -> bool:
    """Whether an error code says the keys themselves were refused."""
    return code in _AUTH_CODES


def error_code(err: ClientError) -> str:
    """Return the error code of a ``ClientError`` ('' when the service sent none)."""
    return str(err.response.get("Error", {}).get("Code", ""))


# The IAM action each request of the integration needs, by service and operation.
# README's policies list exactly these (tests/test_permissions.py runs them).
S3_IAM_ACTIONS = {
    "HeadBucket": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    # A copy in place also reads the source (s3:GetObject), which HEAD needed already.
    "CopyObject": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject",
    "RestoreObject": "s3:RestoreObject",
}
GLACIER_IAM_ACTIONS = {
    operation: f"glacier:{operation}"
    for operation in (
        "DescribeVault",
        "UploadArchive",
        "InitiateMultipartUpload",
        "UploadMultipartPart",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
        "InitiateJob",
        "DescribeJob",
        "GetJobOutput",
        "DeleteArchive",
    )
}
# AWS names the refused action in the message ("... is not authorized to perform:
# kms:GenerateDataKey on resource ..."): that beats the table, e.g. for a KMS key.
_ACTION_IN_MESSAGE = re.compile(r"not authorized to perform:? ([a-z0-9-]+:[A-Za-z0-9]+)")


def iam_action(service: str, operation: str) -> str:
    """The IAM action a request needs (``service`` is "s3" or "glacier")."""
    table = GLACIER_IAM_ACTIONS if service == "glacier" else S3_IAM_ACTIONS
    # IAM names most actions after the operation: the best guess for one not listed.
    return table.get(operation, f"{service}:{operation}")


def _refused_action(err: ClientError) -> str:
    """The IAM action a refused request needed: from AWS's message, else the table."""
    message = str(err.response.get("Error", {}).get("Message", ""))
    if found := _ACTION_IN_MESSAGE.search(message):
        return found.group(1)
    # Glacier is a JSON service and says "AccessDeniedException"; S3 says "AccessDenied"
    # (or nothing, on a HEAD). Two operation names exist in both services.
    service = "glacier" if error_code(err) == "AccessDeniedException" else "s3"
    return iam_action(service, err.operation_name)


def map_client_error(err: ClientError) -> ArchiveError:
    """Map a botocore ``ClientError`` to the engine's exception tree.

    Only refused keys are an ``AuthError`` (Home Assistant then asks for new ones);
    a refused request of valid keys is an ``AccessDeniedError`` naming the IAM action.
    """
    code = error_code(err)
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in _AUTH_CODES:
        return AuthError(code)
    if code == "NoSuchBucket":
        return BucketNotFoundError(code)
    if code in _ACCESS_DENIED_CODES:
        return AccessDeniedError(code, action=_refused_action(err))
    if code in _NO_LONGER_SUPPORTED_CODES:
        return ServiceUnavailableError(code)
    if code in EXPEDITED_UNAVAILABLE_CODES:
        return ExpeditedUnavailableError(code)
    if code == "ObjectAlreadyInActiveTierError":
        return AlreadyActiveTierError(code)
    if code in _THROTTLE_CODES or status == 503:
        return ThrottledError(code or "503")
    if code == "InvalidObjectState":
        return NotRestoredError(code)
    if code in _NOT_FOUND_CODES:
        return NotFoundError(code)
    if code in ("", "403") and status == 403:
        # HEAD answers carry no body: a bare 403 on the setup check is the only sign
        # of refused keys; elsewhere the keys passed that check, so the policy refused.
        if err.operation_name in _SETUP_CHECK_OPERATIONS:
            return AuthError("403")
        return AccessDeniedError("403", action=_refused_action(err))
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
