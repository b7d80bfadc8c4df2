"""Credentials → boto3 client, in one place.

Creating a client reads botocore's JSON service models from disk, so callers run
this in the executor.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    InvalidRegionError as BotoInvalidRegionError,
)
from botocore.retries import quota, standard

from .errors import (
    EXPEDITED_UNAVAILABLE_CODES,
    InvalidEndpointError,
    InvalidRegionError,
    aws_errors,
    error_code,
    iam_action,
    means_refused_keys,
)
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


class GrantedActions:
    """The IAM actions a client's requests were allowed since last drained.

    Filled from botocore's worker threads; lets Home Assistant clear a "missing
    permission" repair issue once the action it names has succeeded.
    """

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._actions: set[str] = set()

    def add(self, action: str) -> None:
        """Record that a request needing ``action`` succeeded."""
        with self._lock:
            self._actions.add(action)

    def drain(self) -> set[str]:
        """Return the actions recorded so far and forget them."""
        with self._lock:
            actions, self._actions = self._actions, set()
        return actions


def make_client(
    service: str,
    credentials: Credentials,
    *,
    max_pool: int = 10,
    max_attempts: int | None = None,
    granted: GrantedActions | None = None,
) -> Any:
    """Build a boto3 client for ``service`` ("s3" or "glacier").

    ``max_attempts`` defaults to ``DEFAULT_MAX_ATTEMPTS`` (read at call time); a form
    that checks credentials passes 1 so the user hears back at once. ``granted``, if
    given, records the IAM action of every request that succeeds.
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
            client = session.client(service, endpoint_url=endpoint or None, config=config)
        except BotoInvalidRegionError as err:
            raise InvalidRegionError("malformed region name") from err
        except ValueError as err:  # botocore's own check of the endpoint URL
            raise InvalidEndpointError(str(err)) from err
    _use_retry_conditions(client, attempts)
    if service == "s3":
        _explain_bare_403s(client)
    if granted is not None:
        _record_granted(client, service, granted)
    return client


def _explain_bare_403s(client: Any) -> None:
    """Tell refused keys from a refused policy when S3 answers a HEAD with a bare 403.

    A HEAD answer has no body, so revoked keys and a policy without the action look
    the same. Only then, one request that does carry a body (an empty listing) asks
    again: its error code replaces the HEAD's, so revoked keys still lead to a reauth
    and a policy that lacks the action to a repair issue.
    """

    def remember_bucket(*, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_BUCKET_CONTEXT] = params.get("Bucket")

    def explain(
        *, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        error = parsed.get("Error") or {}
        bucket = context.get(_BUCKET_CONTEXT)
        if getattr(http_response, "status_code", None) != 403 or not bucket:
            return
        if error.get("Code") not in (None, "", "403"):
            return
        try:
            client.list_objects_v2(Bucket=bucket, MaxKeys=0)
        except ClientError as probe:
            code = error_code(probe)
        except BotoCoreError:
            return  # unexplained: the bare 403 stays as it is
        else:
            code = ""
        keys_refused = means_refused_keys(code) or code == "NoSuchBucket"
        parsed["Error"] = {**error, "Code": code if keys_refused else "AccessDenied"}

    for operation in ("HeadBucket", "HeadObject"):
        client.meta.events.register(f"before-parameter-build.s3.{operation}", remember_bucket)
        client.meta.events.register(f"after-call.s3.{operation}", explain)


_BUCKET_CONTEXT = "s3_glacier_bucket"


def _record_granted(client: Any, service: str, granted: GrantedActions) -> None:
    """Record in ``granted`` the IAM action of each request the service accepts."""

    def after_call(*, http_response: Any, model: Any, **_: Any) -> None:
        if getattr(http_response, "status_code", 500) < 300:
            granted.add(iam_action(service, model.name))

    name = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"after-call.{name}", after_call)


class _RetryConditions(standard.StandardRetryConditions):  # type: ignore[misc]
    """botocore's standard retry conditions, except for answers a retry cannot change.

    Standard mode retries every 503; S3 answers "no Expedited capacity now" with one,
    and five tries in a row only delay the answer that Standard would be accepted.
    """

    def is_retryable(self, context: Any) -> bool:
        if context.get_error_code() in EXPEDITED_UNAVAILABLE_CODES:
            return False
        return bool(super().is_retryable(context))


def _use_retry_conditions(client: Any, attempts: int) -> None:
    """Swap the client's standard retry handler for one with ``_RetryConditions``.

    The same parts botocore's ``standard.register_retry_handler`` assembles (backoff,
    retry quota), registered under the same ID in place of the original.
    """
    name = client.meta.service_model.service_id.hyphenize()
    unique_id = f"retry-config-{name}"
    client.meta.events.unregister(f"needs-retry.{name}", unique_id=unique_id)
    retry_quota = standard.RetryQuotaChecker(quota.RetryQuota())
    client.meta.events.register(f"after-call.{name}", retry_quota.release_retry_quota)
    handler = standard.RetryHandler(
        retry_policy=standard.RetryPolicy(
            retry_checker=_RetryConditions(max_attempts=attempts),
            retry_backoff=standard.ExponentialBackoff(),
        ),
        retry_event_adapter=standard.RetryEventAdapter(),
        retry_quota=retry_quota,
    )
    client.meta.events.register(f"needs-retry.{name}", handler.needs_retry, unique_id=unique_id)
