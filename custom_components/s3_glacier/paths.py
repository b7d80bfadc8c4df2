"""Local paths and object keys for the actions: resolved, allowlisted, validated.

Everything here touches the disk (or ``is_allowed_path``, which does) and runs in the
executor. Problems raise ``ServiceValidationError`` with a translation key before
anything is uploaded, downloaded or deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
import glob
from pathlib import Path, PurePosixPath

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .const import DOMAIN, LOGGER

MAX_KEY_BYTES = 1024
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class Source:
    """One local file to archive, its size, and the key it goes to."""

    path: Path
    key: str
    size: int


def invalid(translation_key: str, **placeholders: object) -> ServiceValidationError:
    """Build a translated validation error."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=translation_key,
        translation_placeholders={k: str(v) for k, v in placeholders.items()},
    )


def validate_key(key: str) -> str:
    """Return ``key`` if it is safe to use as an object key, else raise a translated error."""
    problem = None
    if not key:
        problem = "key_empty"
    elif key.startswith("/"):
        problem = "key_absolute"
    elif ".." in key.split("/"):
        problem = "key_parent_segment"
    elif len(key.encode("utf-8")) > MAX_KEY_BYTES:
        problem = "key_too_long"
    if problem:
        raise invalid(problem, key=key[:80], limit=MAX_KEY_BYTES)
    return key


def _allowed(hass: HomeAssistant, path: Path, shown: str) -> Path:
    """Resolve symlinks and check the real path against allowlist_external_dirs."""
    real = path.resolve()
    if not hass.config.is_allowed_path(str(real)):
        raise invalid("no_access_to_path", path=shown)
    return real


def _join(prefix: str, relative: str) -> str:
    return f"{prefix.rstrip('/')}/{relative}" if prefix.strip("/") else relative


def _glob_base(pattern: str) -> Path:
    """The directory part of a glob before its first wildcard."""
    parts = Path(pattern).parts
    first_wild = next(i for i, part in enumerate(parts) if _GLOB_CHARS & set(part))
    return Path(*parts[:first_wild]) if first_wild else Path()


def collect_sources(hass: HomeAssistant, path: str, key: str | None, prefix: str) -> list[Source]:
    """Resolve ``path`` (file, directory or glob) into files and their keys.

    ``key`` is the object key for a single file, or a key prefix for several; without
    it, files go under the entry's ``prefix`` by name, and directories and globs keep
    their layout relative to the directory they name. Every key must lie under
    ``prefix``. The allowlist is checked before the path's existence, so the errors
    say nothing about paths outside it.
    """
    if _GLOB_CHARS & set(path):
        base = _allowed(hass, _glob_base(path), path)
        matches = sorted(Path(p) for p in glob.glob(path, recursive=True))  # noqa: PTH207
        files = [(p, p.resolve().relative_to(base).as_posix()) for p in matches if p.is_file()]
        single = False
    else:
        candidate = _allowed(hass, Path(path), path)
        if candidate.is_dir():
            files = [
                (p, p.relative_to(candidate).as_posix())
                for p in sorted(candidate.rglob("*"))
                if p.is_file()
            ]
            single = False
        elif candidate.is_file():
            files = [(candidate, candidate.name)]
            single = True
        else:
            raise invalid("path_not_found", path=path)
    if not files:
        raise invalid("no_files_match", path=path)

    sources: list[Source] = []
    for file, relative in files:
        real = _allowed(hass, file, str(file))
        if single and key is not None:
            object_key = key
        else:
            object_key = _join(key if key is not None else prefix, relative)
        sources.append(
            Source(real, check_in_prefix(validate_key(object_key), prefix), real.stat().st_size)
        )
    return sources


def check_in_prefix(key: str, prefix: str) -> str:
    """Return ``key`` if it lies under the entry's ``prefix`` ('' allows every key)."""
    folder = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    if not key.startswith(folder):
        raise invalid("key_outside_prefix", key=key[:80], prefix=folder)
    return key


def resolve_destination(hass: HomeAssistant, destination: str, key: str, overwrite: bool) -> Path:
    """Return the file a restore writes: ``destination`` itself, or inside it if a directory.

    The destination must be allowlisted (checked first), its directory must exist, and
    an existing file is only replaced with ``overwrite``.
    """
    target = _allowed(hass, Path(destination), destination)
    if target.is_dir():
        target /= PurePosixPath(key).name
    if not target.parent.is_dir():
        raise invalid("destination_not_found", path=destination)
    if target.is_dir():
        raise invalid("destination_is_directory", path=str(target))
    if target.exists() and not overwrite:
        raise invalid("destination_exists", path=str(target))
    return target


@contextmanager
def writing(destination: Path) -> Iterator[None]:
    """Make a file error raised while writing ``destination`` name it.

    A download goes through a hidden temporary file beside ``destination``: an error
    there names that file (or, for a full disk, no file at all), which the user never
    asked for and cannot find afterwards.
    """
    try:
        yield
    except OSError as err:
        if err.filename == str(destination) or err.errno is None:
            # Already named, or an error without a code (a timeout) whose message
            # would be lost in a rebuilt one.
            raise
        # OSError picks the subclass from the code (FileExistsError, PermissionError…);
        # a subclass's own constructor may not take these arguments.
        raise OSError(err.errno, err.strerror, str(destination)) from err


class KeptSources:
    """Deletes archived source files (``delete_source``), noting those it cannot delete.

    A file is deleted only once archived and recorded, so one that cannot be deleted (a
    read-only share, a directory Home Assistant may not write) must not stop the others
    nor read as a failed upload: ``check`` fails the call at the end, saying so.
    """

    def __init__(self) -> None:
        """Start with no file kept."""
        self._kept: list[tuple[Path, OSError]] = []

    def delete(self, path: Path) -> None:
        """Delete the archived file ``path`` (executor); one already gone is fine."""
        try:
            path.unlink(missing_ok=True)
        except OSError as err:
            LOGGER.warning("%s is archived but could not be deleted: %s", path, err.strerror)
            self._kept.append((path, err))

    def check(self) -> None:
        """Raise a translated error naming the first file kept, if any was."""
        if not self._kept:
            return
        path, err = self._kept[0]
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="source_not_deleted",
            translation_placeholders={
                "path": str(path),
                "count": str(len(self._kept)),
                "error": err.strerror or type(err).__name__,
            },
        )
