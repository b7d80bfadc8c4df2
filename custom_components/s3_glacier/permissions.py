"""Refused IAM actions as repair issues that name them, cleared once the action works.

``AccessDenied`` means the keys are fine and the policy lacks an action: the user fixes
the policy, so this is a repair issue (one per missing action), never a reauth.
"""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from . import repairs
from .archive.client import GrantedActions
from .archive.errors import AccessDeniedError
from .const import DOMAIN, LOGGER

MISSING_PERMISSION = "missing_permission"


@callback
def async_report_denied(hass: HomeAssistant, entry: ConfigEntry, err: AccessDeniedError) -> None:
    """Raise the entry's issue for the refused action; log only when it is new."""
    issue = repairs.issue_id(entry, MISSING_PERMISSION, err.action)
    if ir.async_get(hass).async_get_issue(DOMAIN, issue) is None:
        LOGGER.warning(
            "%s: the IAM policy of the access keys does not allow %s (the README lists"
            " the complete policy)",
            entry.title,
            err.action,
        )
    repairs.async_raise(hass, entry, MISSING_PERMISSION, detail=err.action, action=err.action)


@callback
def async_clear_granted(hass: HomeAssistant, entry: ConfigEntry, granted: GrantedActions) -> None:
    """Delete the issues of every action that requests were allowed since last time."""
    for action in granted.drain():
        repairs.async_clear(hass, entry, MISSING_PERMISSION, detail=action)
