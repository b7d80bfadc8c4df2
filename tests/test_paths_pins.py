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
from .helpers import add_and_set_up, unload


def _keys(s3: Any) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def _folder(allowed: Path) -> Path:
    write_seeded(allowed / "in" / "a.txt", 10)
    write_seeded(allowed / "in" / "sub" / "b.txt", 20)
    return allowed / "in"


def _entry(prefix: str) -> MockConfigEntry:
    """An entry for the demo bucket under ``prefix`` (as the config flow stores it)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"{BUCKET}/{prefix}" if prefix else BUCKET,
        data={**BUCKET_DATA, CONF_PREFIX: prefix},
        unique_id=f"{REGION}|{BUCKET}|{prefix}",
    )


@pytest.fixture
async def whole_bucket(hass: HomeAssistant, aws: None) -> AsyncIterator[MockConfigEntry]:
    """An entry over the whole demo bucket: no prefix, every key its own."""
    entry = await add_and_set_up(hass, _entry(""))
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


@pytest.mark.parametrize(("prefix", "beside"), [("INBOX", "INBO/a"), ("X", "Y/a")])
async def test_an_entry_prefix_is_kept_whole(
    hass: HomeAssistant, aws: None, allowed: Path, s3: Any, prefix: str, beside: str
) -> None:
    """An entry's prefix is a folder, kept whole whatever its letters and however short:
    its files go under it, and keys beside it are refused."""
    entry = await add_and_set_up(hass, _entry(prefix))
    try:
        await call_action(hass, "archive", path=str(_folder(allowed)))
        a_file = str(allowed / "in" / "a.txt")
        await call_action(hass, "archive", path=a_file, key=f"{prefix}/c.txt")
        with pytest.raises(ServiceValidationError) as err:
            await call_action(hass, "archive", path=a_file, key=beside)
    finally:
        await unload(hass, entry)
    assert _keys(s3) == [f"{prefix}/a.txt", f"{prefix}/c.txt", f"{prefix}/sub/b.txt"]
    assert err.value.translation_placeholders == {"key": beside, "prefix": f"{prefix}/"}


_LONGEST = "ha/" + "k" * 1021  # 1,024 bytes: S3's limit
_TOO_LONG_IN_BYTES = "ha/" + "é" * 511  # 514 characters, but 1,025 bytes in UTF-8
_FAR_AWAY = "elsewhere/" + "d" * 100


@pytest.mark.usefixtures("init_integration")
async def test_a_key_of_exactly_the_limit_is_archived(
    hass: HomeAssistant, allowed: Path, s3: Any
) -> None:
    write_seeded(allowed / "a.txt", 10)
    await call_action(hass, "archive", path=str(allowed / "a.txt"), key=_LONGEST)
    assert _keys(s3) == [_LONGEST]


@pytest.mark.usefixtures("init_integration")
@pytest.mark.parametrize(
    ("key", "error", "placeholders"),
    [
        (_TOO_LONG_IN_BYTES, "key_too_long", {"key": _TOO_LONG_IN_BYTES[:80], "limit": "1024"}),
        ("/ha/a.txt", "key_absolute", {"key": "/ha/a.txt", "limit": "1024"}),
        ("ha/../a.txt", "key_parent_segment", {"key": "ha/../a.txt", "limit": "1024"}),
        (_FAR_AWAY, "key_outside_prefix", {"key": _FAR_AWAY[:80], "prefix": "ha/"}),
    ],
)
async def test_a_refused_key_is_shown_by_its_start_with_the_rule_it_breaks(
    hass: HomeAssistant,
    allowed: Path,
    s3: Any,
    key: str,
    error: str,
    placeholders: dict[str, str],
) -> None:
    """A key is measured in UTF-8 bytes, as S3 does; the error shows its first 80
    characters (a whole 1 KiB key would drown the message) and the limit or prefix."""
    write_seeded(allowed / "a.txt", 10)
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "archive", path=str(allowed / "a.txt"), key=key)
    assert (err.value.translation_key, err.value.translation_placeholders) == (
        error,
        placeholders,
    )
    assert _keys(s3) == []
