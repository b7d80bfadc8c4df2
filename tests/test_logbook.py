"""The logbook (Activity) describes archive, delete and restore, read over its websocket API.

The actions run against moto and fire their real events; the recorder stores them and
the logbook's ``logbook/get_events`` reads them back through our ``logbook.py``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder import Recorder
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.s3_glacier.const import (
    DOMAIN,
    EVENT_RESTORE_FAILED,
    EVENT_RESTORE_REQUESTED_AGAIN,
)

from .conftest import BUCKET, call_action

pytestmark = pytest.mark.usefixtures("recorder_mock")


@pytest.fixture
async def logbook(hass: HomeAssistant, recorder_mock: Recorder) -> None:
    """The logbook, without the frontend panel (its package is not installed here)."""
    hass.config.components.add("frontend")
    assert await async_setup_component(hass, "logbook", {})
    await hass.async_block_till_done()


@pytest.fixture
def files(hass: HomeAssistant, tmp_path: Path) -> Path:
    """An allowlisted directory."""
    base = tmp_path / "files"
    base.mkdir()
    hass.config.allowlist_external_dirs = {str(base.resolve())}
    return base


async def _logbook_lines(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, since: Any
) -> list[tuple[str, str, str]]:
    await async_wait_recording_done(hass)
    client = await hass_ws_client(hass)
    # The clock is frozen: events fired "now" end before a minute from now.
    until = dt_util.utcnow() + timedelta(minutes=1)
    await client.send_json_auto_id(
        {
            "type": "logbook/get_events",
            "start_time": since.isoformat(),
            "end_time": until.isoformat(),
        }
    )
    response = await client.receive_json()
    assert response["success"], response
    return [
        (line["domain"], line["name"], line["message"])
        for line in response["result"]
        if line.get("domain") == DOMAIN
    ]


@pytest.mark.usefixtures("logbook")
async def test_archive_restore_delete_read_in_the_logbook(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    files: Path,
    s3: Any,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Each file's archive, restore (done and failed) and delete is one readable line."""
    since = dt_util.utcnow() - timedelta(seconds=1)
    (files / "holiday.mp4").write_bytes(b"h" * 1_300_000)
    (files / "notes.txt").write_bytes(b"n" * 43)
    await call_action(
        hass, "archive", path=str(files / "holiday.mp4"), storage_class="DEEP_ARCHIVE"
    )
    await call_action(hass, "archive", path=str(files / "notes.txt"), storage_class="GLACIER")

    # moto finishes restores at once: the watcher downloads at its first check.
    (files / "out").mkdir()
    await call_action(hass, "restore", key="ha/holiday.mp4", destination=str(files / "out"))
    await call_action(hass, "restore", key="ha/notes.txt")
    s3.delete_object(Bucket=BUCKET, Key="ha/notes.txt")  # gone behind our back
    freezer.tick(timedelta(minutes=16))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    await call_action(hass, "delete", key="ha/holiday.mp4")

    restored = (files / "out" / "holiday.mp4").resolve()
    title = init_integration.title
    lines = await _logbook_lines(hass, hass_ws_client, since)
    assert [(domain, name) for domain, name, _ in lines] == [(DOMAIN, title)] * 5
    messages = [message for _, _, message in lines]
    assert messages[:2] == [
        "archived ha/holiday.mp4 (1.24 MiB) to Glacier Deep Archive",
        "archived ha/notes.txt (43 B) to Glacier Flexible Retrieval",
    ]
    # The two restores are checked side by side: either may end first.
    assert sorted(messages[2:4]) == [
        "could not restore ha/notes.txt: the object no longer exists",
        f"restored ha/holiday.mp4 to {restored}",
    ]
    assert messages[4] == (
        "deleted ha/holiday.mp4 (1.24 MiB) from Glacier Deep Archive; early deletion charge $0.0001"
    )


@pytest.mark.usefixtures("logbook")
async def test_vault_lines_name_the_file_not_the_archive_id(
    hass: HomeAssistant,
    loaded_vault: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    files: Path,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A vault's lines name the file (archive IDs are 138 characters)."""
    since = dt_util.utcnow() - timedelta(seconds=1)
    (files / "photos.tar").write_bytes(b"p" * 768_000)
    archived = await call_action(
        hass, "archive", path=str(files / "photos.tar"), delete_source=True
    )
    archive_id = archived["archived"][0]["archive_id"]
    await call_action(
        hass, "restore", archive_id=archive_id, destination=str(files), tier="Expedited"
    )
    # moto's Expedited job ends after 2 s; the watcher checks every minute.
    freezer.tick(timedelta(minutes=1, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    await call_action(hass, "delete", archive_id=archive_id)

    lines = await _logbook_lines(hass, hass_ws_client, since)
    assert [message for _, _, message in lines] == [
        "archived photos.tar (750 KiB) to the Glacier vault",
        f"restored photos.tar to {(files / 'photos.tar').resolve()}",
        "deleted photos.tar (750 KiB) from the Glacier vault; early deletion charge $0.0001",
    ]
    assert {name for _, name, _ in lines} == {loaded_vault.title}


@pytest.mark.usefixtures("logbook")
async def test_watcher_outcomes_read_in_the_logbook(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """A restore asked again, and the watcher's give-ups, each read as a sentence.

    The events are the ones the watcher fires (tests/test_restore.py drives those paths);
    here only their description is checked.
    """
    since = dt_util.utcnow() - timedelta(seconds=1)
    entry_id = init_integration.entry_id
    hass.bus.async_fire(
        EVENT_RESTORE_REQUESTED_AGAIN,
        {
            "config_entry_id": entry_id,
            "key": "ha/old.tar",
            "reason": "restore_expired",
            "ready_by": "2026-11-27T18:00:00+00:00",
        },
    )
    for reason in ("restore_expired", "checks_failed"):
        hass.bus.async_fire(
            EVENT_RESTORE_FAILED,
            {"config_entry_id": entry_id, "key": "ha/old.tar", "reason": reason},
        )
    await hass.async_block_till_done()
    lines = await _logbook_lines(hass, hass_ws_client, since)
    assert [message for _, _, message in lines] == [
        "the restored copy of ha/old.tar expired before it was downloaded:"
        " its restore was requested again",
        "could not restore ha/old.tar: the restored copy expired again before it was downloaded",
        "could not restore ha/old.tar: its restore could not be checked many times in a row",
    ]


@pytest.mark.usefixtures("logbook")
async def test_instant_restore_reads_in_the_logbook(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    files: Path,
) -> None:
    """A restore that downloads at once (an instant class) is described like a watched one."""
    since = dt_util.utcnow() - timedelta(seconds=1)
    (files / "notes.txt").write_bytes(b"n" * 43)
    await call_action(hass, "archive", path=str(files / "notes.txt"), storage_class="glacier_ir")
    (files / "out").mkdir()
    response = await call_action(
        hass, "restore", key="ha/notes.txt", destination=str(files / "out")
    )
    assert response["status"] == "restored"

    lines = await _logbook_lines(hass, hass_ws_client, since)
    assert [message for _, _, message in lines] == [
        "archived ha/notes.txt (43 B) to Glacier Instant Retrieval",
        f"restored ha/notes.txt to {(files / 'out' / 'notes.txt').resolve()}",
    ]
