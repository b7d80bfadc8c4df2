"""Answering single requests on an entry's own botocore client, where moto cannot.

botocore's event hooks answer or observe the one request in question, as botocore's
Stubber does; every other request still reaches moto.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse
from pytest_homeassistant_custom_component.common import MockConfigEntry

from .conftest import BUCKET


def error_response(code: str, status: int) -> tuple[AWSResponse, dict[str, Any]]:
    """A before-call answer that botocore turns into ClientError(code)."""
    parsed = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}},
    }
    return AWSResponse(f"https://{BUCKET}.s3.amazonaws.com", status, {}, None), parsed


class ClientHooks:
    """botocore event handlers on the entry's own client, removed after the test."""

    def __init__(self, entry: MockConfigEntry) -> None:
        self._events = entry.runtime_data.target._client.meta.events
        self._registered: list[tuple[str, Callable[..., Any]]] = []
        self.restore_requests: list[dict[str, Any]] = []
        self.on("provide-client-params.s3.RestoreObject", self._record_restore)

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        self._events.register_first(event, handler)
        self._registered.append((event, handler))

    def _record_restore(self, params: dict[str, Any], **_: Any) -> None:
        self.restore_requests.append(params["RestoreRequest"])

    def remove_all(self) -> None:
        for event, handler in self._registered:
            self._events.unregister(event, handler)
