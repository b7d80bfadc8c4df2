"""Which object keys files go to, and which path a refusal names: pinned exactly.

Found unchecked by mutation testing. Each test archives through Home Assistant's action
against moto's S3, once for an entry under the prefix ``ha`` and once for an entry over
the whole bucket (no prefix), where a folder key of ``/`` means the bucket's root.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.s3_glacier.const import CONF_PREFIX, DOMAIN

from .conftest import BUCKET, BUCKET_DATA, REGION, call_action, write_seeded
from .helpers import unload


def _keys(s3: Any) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def _folder(allowed: Path) -> Path:
    write_seeded(allowed / "in" / "a.txt", 10)
    write_seeded(allowed / "in" / "sub" / "b.txt", 20)
    return allowed / "in"


@pytest.fixture
async def whole_bucket(hass: HomeAssistant, aws: None) -> AsyncIterator[MockConfigEntry]:
    """An entry over the whole demo bucket: no prefix, every key its own."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=BUCKET,
        data={**BUCKET_DATA, CONF_PREFIX: ""},
        unique_id=f"{REGION}|{BUCKET}|",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    yield entry
    await unload(hass, entry)


@pytest.mark.usefixtures("init_integration")
@pytest.mark.parametrize("key", ["ha/INBOX/", "ha/INBOX"])
async def test_a_folder_key_is_kept_whole_with_or_without_its_slash(
    hass: HomeAssistant, allowed: Path, s3: Any, key: str
) -> None:
    """A folder archived under a key: every file below it, the key's name kept whole."""
    await call_action(hass, "archive", path=str(_folder(allowed)), key=key)
    assert _keys(s3) == ["ha/INBOX/a.txt", "ha/INBOX/sub/b.txt"]


@pytest.mark.usefixtures("whole_bucket")
@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (None, ["a.txt", "sub/b.txt"]),
        ("/", ["a.txt", "sub/b.txt"]),
        ("X", ["X/a.txt", "X/sub/b.txt"]),
        ("X/", ["X/a.txt", "X/sub/b.txt"]),
    ],
)
async def test_a_folder_in_a_whole_bucket_goes_to_its_root_or_under_its_key(
    hass: HomeAssistant, allowed: Path, s3: Any, key: str | None, expected: list[str]
) -> None:
    """Without a prefix, a folder goes to the bucket's root (no key, or "/"), or under the
    folder key given, however short."""
    fields = {"key": key} if key is not None else {}
    await call_action(hass, "archive", path=str(_folder(allowed)), **fields)
    assert _keys(s3) == expected


@pytest.mark.usefixtures("init_integration")
@pytest.mark.parametrize(
    ("path", "error", "shown"),
    [
        # As written, before anything is resolved.
        ("{outside}/secret.txt", "no_access_to_path", "{outside}/secret.txt"),
        ("{outside}/*.txt", "no_access_to_path", "{outside}/*.txt"),
        ("{allowed}/missing.txt", "path_not_found", "{allowed}/missing.txt"),
        ("{allowed}/*.nothing", "no_files_match", "{allowed}/*.nothing"),
        ("{allowed}/empty", "no_files_match", "{allowed}/empty"),
        # A link inside an allowed folder that leads outside: the link is named.
        ("{allowed}/share", "no_access_to_path", "{real}/share/link.txt"),
    ],
)
async def test_a_refused_path_is_named(
    hass: HomeAssistant, allowed: Path, s3: Any, path: str, error: str, shown: str
) -> None:
    """Each refused path names what to fix: the path as given, or the file in a folder
    that cannot be archived. Nothing is sent."""
    outside = allowed.parent / "outside"
    write_seeded(outside / "secret.txt", 10)
    (allowed / "empty").mkdir()
    write_seeded(allowed / "share" / "ok.txt", 10)
    (allowed / "share" / "link.txt").symlink_to(outside / "secret.txt")
    names = {"allowed": allowed, "outside": outside, "real": allowed.resolve()}
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "archive", path=path.format(**names))
    assert err.value.translation_key == error
    assert err.value.translation_placeholders == {"path": shown.format(**names)}
    assert _keys(s3) == []


async def test_an_entry_prefix_is_kept_whole(
    hass: HomeAssistant, aws: None, allowed: Path, s3: Any
) -> None:
    """An entry's prefix is a folder, kept whole whatever its letters: its files go
    under it, and keys beside it are refused."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"{BUCKET}/INBOX",
        data={**BUCKET_DATA, CONF_PREFIX: "INBOX"},
        unique_id=f"{REGION}|{BUCKET}|INBOX",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    try:
        await call_action(hass, "archive", path=str(_folder(allowed)))
        await call_action(hass, "archive", path=str(allowed / "in" / "a.txt"), key="INBOX/c.txt")
        with pytest.raises(ServiceValidationError) as err:
            await call_action(hass, "archive", path=str(allowed / "in" / "a.txt"), key="INBO/a")
    finally:
        await unload(hass, entry)
    assert _keys(s3) == ["INBOX/a.txt", "INBOX/c.txt", "INBOX/sub/b.txt"]
    assert err.value.translation_placeholders == {"key": "INBO/a", "prefix": "INBOX/"}
