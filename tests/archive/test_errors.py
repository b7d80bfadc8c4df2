"""AWS errors mean what they say: refused keys, refused actions, answers not to retry.

Against real protocols: moto with IAM enforced for the permission cases, and a small
HTTP server on 127.0.0.1 for the answers moto cannot give (S3's Expedited capacity
and active-tier refusals), which also counts the requests the client's retries send.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import threading
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto import settings as moto_settings
from moto.core.authorization import ActionAuthenticatorMixin
import pytest

from custom_components.s3_glacier.archive import client as client_module
from custom_components.s3_glacier.archive.client import GrantedActions, make_client
from custom_components.s3_glacier.archive.errors import (
    AccessDeniedError,
    AlreadyActiveTierError,
    ArchiveError,
    AuthError,
    ExpeditedUnavailableError,
    NotRestoredError,
    ThrottledError,
    map_client_error,
)
from custom_components.s3_glacier.archive.models import Credentials, RestoreState, RestoreTier
from custom_components.s3_glacier.archive.s3 import S3Target

from ..conftest import BUCKET, REGION


def _client_error(code: str, status: int, operation: str, message: str = "") -> ClientError:
    """The exception botocore raises for an error answer (as its parser builds it)."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


# --- the mapping, code by code ---------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    ["InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"],
)
def test_refused_keys_are_auth_errors(code: str) -> None:
    assert type(map_client_error(_client_error(code, 403, "PutObject"))) is AuthError


@pytest.mark.parametrize(
    ("operation", "action"),
    [
        ("ListMultipartUploads", "s3:ListBucketMultipartUploads"),
        ("ListObjectsV2", "s3:ListBucket"),
        ("PutObject", "s3:PutObject"),
        ("CreateMultipartUpload", "s3:PutObject"),
        ("CompleteMultipartUpload", "s3:PutObject"),
        ("AbortMultipartUpload", "s3:AbortMultipartUpload"),
        ("RestoreObject", "s3:RestoreObject"),
        ("DeleteObject", "s3:DeleteObject"),
        ("GetObject", "s3:GetObject"),
    ],
)
def test_access_denied_names_the_s3_action(operation: str, action: str) -> None:
    err = map_client_error(_client_error("AccessDenied", 403, operation, "Access Denied"))
    assert type(err) is AccessDeniedError
    assert err.action == action
    assert err.placeholders["action"] == action
    assert err.translation_key == "access_denied"


@pytest.mark.parametrize(
    ("operation", "action"),
    [
        ("CompleteMultipartUpload", "glacier:CompleteMultipartUpload"),
        ("AbortMultipartUpload", "glacier:AbortMultipartUpload"),
        ("InitiateJob", "glacier:InitiateJob"),
        ("DescribeVault", "glacier:DescribeVault"),
    ],
)
def test_access_denied_names_the_vault_action(operation: str, action: str) -> None:
    """Glacier (a JSON service) says AccessDeniedException: the glacier: actions."""
    err = map_client_error(_client_error("AccessDeniedException", 403, operation))
    assert isinstance(err, AccessDeniedError)
    assert err.action == action


def test_access_denied_prefers_the_action_aws_names() -> None:
    """AWS's message names the refused action (here the KMS key's, not s3:PutObject)."""
    message = (
        "User: arn:aws:iam::111122223333:user/archiver is not authorized to perform:"
        ' kms:GenerateDataKey on resource: "arn:aws:kms:eu-west-1:111122223333:key/k"'
        " because no identity-based policy allows the kms:GenerateDataKey action"
    )
    err = map_client_error(_client_error("AccessDenied", 403, "PutObject", message))
    assert isinstance(err, AccessDeniedError)
    assert err.action == "kms:GenerateDataKey"
    assert "111122223333" not in str(err)


def test_bare_403_is_auth_only_on_the_setup_check() -> None:
    """A HEAD answer has no body: on the bucket check it means refused keys, else a policy."""
    assert type(map_client_error(_client_error("403", 403, "HeadBucket"))) is AuthError
    err = map_client_error(_client_error("403", 403, "HeadObject"))
    assert type(err) is AccessDeniedError
    assert err.action == "s3:GetObject"


def test_other_403_codes_are_not_auth() -> None:
    assert type(map_client_error(_client_error("InvalidObjectState", 403, "GetObject"))) is (
        NotRestoredError
    )
    err = map_client_error(_client_error("ObjectAlreadyInActiveTierError", 403, "RestoreObject"))
    assert type(err) is AlreadyActiveTierError
    skewed = map_client_error(_client_error("RequestTimeTooSkewed", 403, "PutObject"))
    assert type(skewed) is ArchiveError
    assert str(skewed) == "RequestTimeTooSkewed"


def test_expedited_unavailable_is_not_throttling() -> None:
    err = map_client_error(
        _client_error("GlacierExpeditedRetrievalNotAvailable", 503, "RestoreObject")
    )
    assert type(err) is ExpeditedUnavailableError
    assert err.translation_key == "expedited_unavailable"
    vault = map_client_error(_client_error("InsufficientCapacityException", 400, "InitiateJob"))
    assert type(vault) is ExpeditedUnavailableError
    assert type(map_client_error(_client_error("SlowDown", 503, "PutObject"))) is ThrottledError


# --- against moto with IAM enforced ----------------------------------------------------


@pytest.fixture
def limited_keys(aws: None, monkeypatch: pytest.MonkeyPatch) -> Credentials:
    """Keys of a user that may only HEAD the bucket and list its objects."""
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="lister")
    iam.put_user_policy(
        UserName="lister",
        PolicyName="list-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["s3:ListBucket", "s3:HeadBucket"],
                        "Resource": f"arn:aws:s3:::{BUCKET}",
                    }
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName="lister")["AccessKey"]
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key="ha/a", Body=b"1")
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)
    return Credentials(
        access_key_id=key["AccessKeyId"], secret_access_key=key["SecretAccessKey"], region=REGION
    )


def test_moto_refusals_mean_what_they_say(limited_keys: Credentials) -> None:
    """Valid keys refused an action → AccessDeniedError naming it; wrong keys → AuthError."""
    granted = GrantedActions()
    target = S3Target(make_client("s3", limited_keys, granted=granted), BUCKET, "ha")
    assert target.check() == REGION
    assert [o.key for o in target.iterate()] == ["ha/a"]
    assert granted.drain() == {"s3:ListBucket"}

    with pytest.raises(AccessDeniedError) as head:
        target.head("ha/a")  # a HEAD: a bare 403, but the keys passed the check
    assert head.value.action == "s3:GetObject"
    with pytest.raises(AccessDeniedError) as uploads:
        target.abort_stale_uploads(timedelta(days=1))
    assert uploads.value.action == "s3:ListBucketMultipartUploads"
    assert granted.drain() == set()

    wrong = Credentials(
        access_key_id=limited_keys.access_key_id, secret_access_key="wrong", region=REGION
    )
    with pytest.raises(AuthError):
        S3Target(make_client("s3", wrong), BUCKET).check()


# --- answers a retry cannot change, over HTTP -------------------------------------------


class _ErrorServer:
    """Answers every request with one S3 error and counts the requests."""

    def __init__(self, status: int, code: str) -> None:
        self.requests: list[str] = []
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
            "<Message>refused</Message></Error>"
        ).encode()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                server.requests.append(f"{self.command} {self.path}")
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self.do_POST()

            def do_HEAD(self) -> None:
                # A HEAD answer has no body: botocore only sees the status.
                server.requests.append(f"{self.command} {self.path}")
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


@pytest.fixture
def error_server(socket_enabled: None) -> Iterator[type[_ErrorServer]]:
    started: list[_ErrorServer] = []

    class Started(_ErrorServer):
        def __init__(self, status: int, code: str) -> None:
            super().__init__(status, code)
            started.append(self)

    yield Started
    for server in started:
        server.stop()


def _target(url: str) -> S3Target:
    credentials = Credentials(
        access_key_id="AKIDEXAMPLE", secret_access_key="secret", region=REGION, endpoint_url=url
    )
    return S3Target(make_client("s3", credentials), BUCKET, "ha")


def test_expedited_unavailable_is_answered_at_once(
    error_server: type[_ErrorServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3's 503 "no Expedited capacity" is sent once, not retried like a 503 SlowDown."""
    monkeypatch.setattr(client_module, "DEFAULT_MAX_ATTEMPTS", 3)
    server = error_server(503, "GlacierExpeditedRetrievalNotAvailable")
    with pytest.raises(ExpeditedUnavailableError):
        _target(server.url).request_restore("ha/old.tar", 1, RestoreTier.EXPEDITED)
    assert server.requests == [f"POST /{BUCKET}/ha/old.tar?restore"]

    # Other 503s keep the client's retries: the same request three times.
    slow = error_server(503, "SlowDown")
    with pytest.raises(ThrottledError):
        _target(slow.url).request_restore("ha/old.tar", 1, RestoreTier.STANDARD)
    assert len(slow.requests) == 3


def test_restore_of_an_active_object_is_not_auth(error_server: type[_ErrorServer]) -> None:
    server = error_server(403, "ObjectAlreadyInActiveTierError")
    # An object already in an active tier needs no restore: it is readable now.
    state = _target(server.url).request_restore("ha/now.bin", 1, RestoreTier.STANDARD)
    assert state is RestoreState.RESTORED
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("probe_code", "bucket_error", "object_error"),
    [
        ("InvalidAccessKeyId", AuthError, AuthError),
        ("SignatureDoesNotMatch", AuthError, AuthError),
        ("AccessDenied", AccessDeniedError, AccessDeniedError),
    ],
)
def test_bare_403_is_explained_by_a_request_with_a_body(
    error_server: type[_ErrorServer],
    probe_code: str,
    bucket_error: type[ArchiveError],
    object_error: type[ArchiveError],
) -> None:
    """A HEAD refused with a bare 403 is followed by one empty listing, whose error code
    tells revoked keys (reauth) from a policy without the action (repair issue)."""
    server = error_server(403, probe_code)
    with pytest.raises(bucket_error) as bucket:
        _target(server.url).check()
    with pytest.raises(object_error) as obj:
        _target(server.url).head("ha/a")
    assert server.requests == [
        f"HEAD /{BUCKET}",
        f"GET /{BUCKET}?list-type=2&max-keys=0&encoding-type=url",
        f"HEAD /{BUCKET}/ha/a",
        f"GET /{BUCKET}?list-type=2&max-keys=0&encoding-type=url",
    ]
    if isinstance(bucket.value, AccessDeniedError):
        assert bucket.value.action == "s3:ListBucket"
    if isinstance(obj.value, AccessDeniedError):
        assert obj.value.action == "s3:GetObject"
