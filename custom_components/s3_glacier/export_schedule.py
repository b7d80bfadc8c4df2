"""The daily history export: each night the previous local day, missed days at start.

An option of bucket entries (off by default). Each night shortly after local
midnight, and once Home Assistant has started, every complete local day from the
oldest one not yet exported up to yesterday is exported, oldest first, through
``export.async_export_day`` (the action's own code path).

Which day comes next is kept in a ``Store`` per entry, not derived from the catalog:
the catalog also holds what the action exported (perhaps a few entities of a day
under the same key), is rebuilt from the bucket's listing, and starts empty when the
entry is reconfigured; none of that says whether the *schedule* exported a day.

A day that fails (AWS unreachable, access denied) stays next in line: the following
night and the next start try it again, and the day after it waits, so the marker
never skips a day. Re-exporting a day that was uploaded already is skipped as
identical. Days the recorder purged before they could be exported are lost: a repair
issue names them, and another warns beforehand when the recorder keeps so few days
that a short outage would lose one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_time_change
from homeassistant.helpers.recorder import get_instance
from homeassistant.helpers.start import async_at_started
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from . import repairs
from .const import (
    CONF_DAILY_HISTORY_EXPORT,
    DOMAIN,
    HISTORY_EXPORT_MINUTE,
    HISTORY_MIN_KEEP_DAYS,
    LOGGER,
)
from .data import S3GlacierConfigEntry
from .export import async_export_day, async_oldest_recorded, local_midnight

STORAGE_VERSION = 1
ISSUE_DAYS_LOST = "history_days_lost"
ISSUE_KEEP_DAYS_SHORT = "history_keep_days_short"


def _storage_key(entry_id: str) -> str:
    # Not "s3_glacier.<entry_id>.*": those names are the entry's catalogs.
    return f"{DOMAIN}_history_export.{entry_id}"


def _day(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else None


def _complete_at(day: date) -> datetime:
    """When the local ``day``'s last hour of statistics has been compiled (UTC).

    The recorder compiles statistics per whole UTC hour, a few seconds after it ends.
    Where local midnight falls within a UTC hour (India, Nepal, Newfoundland, South
    Australia…) the day's last statistics row covers the hour that ends after it.
    """
    end = local_midnight(day + timedelta(days=1))
    hour = end.replace(minute=0, second=0, microsecond=0)
    if hour < end:
        hour += timedelta(hours=1)
    return hour + timedelta(minutes=HISTORY_EXPORT_MINUTE)


def _last_complete_day() -> date:
    """The newest local day whose statistics are all compiled: yesterday, once it is.

    Before that (at a start just after midnight, say) it is the day before yesterday:
    exporting yesterday then could miss its last statistics, and a day is exported
    only once.
    """
    now = dt_util.utcnow()
    day = dt_util.now().date() - timedelta(days=1)
    while _complete_at(day) > now:
        day -= timedelta(days=1)
    return day


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


async def async_remove_store(hass: HomeAssistant, entry_id: str) -> None:
    """Forget a removed entry's schedule."""
    await Store[dict[str, Any]](hass, STORAGE_VERSION, _storage_key(entry_id)).async_remove()


class DailyHistoryExport:
    """The nightly export of one bucket entry, and its catch-up of missed days."""

    def __init__(self, hass: HomeAssistant, entry: S3GlacierConfigEntry) -> None:
        """Nothing runs until ``async_start``."""
        self._hass = hass
        self._entry = entry
        self._store = Store[dict[str, Any]](hass, STORAGE_VERSION, _storage_key(entry.entry_id))
        # The oldest day not exported yet; None until the first run after switching on.
        self.next_day: date | None = None
        self.last_exported: date | None = None
        self._lost: dict[str, Any] | None = None
        self._unsubs: list[CALLBACK_TYPE] = []
        self._listeners: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._run_again = False
        # The close of the entry's previous load (a reload): its upload may still run.
        self._previous: asyncio.Future[None] | None = None

    @property
    def enabled(self) -> bool:
        """Whether the entry's options switch the daily export on (read at each use)."""
        return bool(self._entry.options.get(CONF_DAILY_HISTORY_EXPORT, False))

    @property
    def days_waiting(self) -> int | None:
        """Complete days not exported yet (None while off or not yet known)."""
        if not self.enabled or self.next_day is None:
            return None
        return max(0, (_last_complete_day() - self.next_day).days + 1)

    @callback
    def async_add_listener(self, listener: Callable[[], None]) -> CALLBACK_TYPE:
        """Call ``listener`` whenever the progress changes; returns the removal."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @callback
    def _async_notify(self) -> None:
        for listener in list(self._listeners):
            listener()

    async def async_load(self) -> None:
        """Load the progress (before the sensors show it)."""
        stored = await self._store.async_load() or {}
        if stored and not self.enabled:
            # Switched off while the entry was not loaded.
            await self._async_forget()
            stored = {}
        self.next_day = _day(stored.get("next_day"))
        self.last_exported = _day(stored.get("last_exported"))
        self._lost = stored.get("lost")
        if self._lost:
            # The issue is not persistent: raised again until the export is switched off.
            self._async_raise_lost()

    @callback
    def async_start(self, previous: asyncio.Future[None] | None = None) -> None:
        """Run each night and catch up once Home Assistant has started.

        ``previous`` is the close of the entry's previous load: an export it began may
        still upload, so the first run waits for it instead of uploading the day again.
        """
        self._previous = previous
        # Hourly: a day is complete shortly after the UTC hour that follows its local
        # midnight (see _complete_at); a run with nothing complete waiting does nothing.
        self._unsubs.append(
            async_track_time_change(
                self._hass, self._async_nightly, minute=HISTORY_EXPORT_MINUTE, second=0
            )
        )
        self._unsubs.append(async_at_started(self._hass, self._async_started))
        self._async_notify()

    @callback
    def async_stop(self) -> None:
        """Stop the nightly trigger and a catch-up in progress (the entry unloads).

        An upload already running finishes and is recorded (see ``data.Lease``); the
        day it belongs to stays next in line and is skipped as identical next time.
        """
        while self._unsubs:
            self._unsubs.pop()()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _async_started(self, _hass: HomeAssistant) -> None:
        self.async_run()

    @callback
    def _async_nightly(self, _now: datetime) -> None:
        if self.next_day is None or self.next_day <= _last_complete_day():
            self.async_run()

    async def async_options_changed(self) -> None:
        """Apply a switched option: start from yesterday, or stop and forget."""
        if self.enabled:
            self.async_run()
            return
        if self._task is not None and not self._task.done():
            self._task.cancel()
            # Its last save must not bring the removed progress back.
            await asyncio.wait([self._task])
        await self._async_forget()

    async def _async_forget(self) -> None:
        """Drop the progress and the issues: the export was switched off.

        The days until it is switched on again are not "missed": the next switch-on
        begins afresh from yesterday.
        """
        self.next_day = self.last_exported = None
        self._lost = None
        await self._store.async_remove()
        repairs.async_clear(self._hass, self._entry, ISSUE_DAYS_LOST)
        repairs.async_clear(self._hass, self._entry, ISSUE_KEEP_DAYS_SHORT)
        self._async_notify()

    @callback
    def async_run(self) -> None:
        """Export the days waiting, in the background (once; again after, if asked meanwhile)."""
        if not self.enabled or "recorder" not in self._hass.config.components:
            return
        if self._task is not None and not self._task.done():
            self._run_again = True
            return
        self._task = self._entry.async_create_background_task(
            self._hass, self._async_run(), f"{DOMAIN} daily history export {self._entry.title}"
        )

    async def _async_run(self) -> None:
        if self._previous is not None:
            await asyncio.wait([self._previous])
            self._previous = None
        self._run_again = True
        while self._run_again and self.enabled:
            self._run_again = False
            try:
                await self._async_catch_up()
            except HomeAssistantError as err:
                # Translated like the action's errors (and the same repair issues and
                # reauth were raised); the day stays next in line.
                LOGGER.warning(
                    "%s: the history of %s was not exported; it is tried again at the"
                    " next night or start: %s",
                    self._entry.title,
                    self.next_day,
                    err,
                )
            except Exception:  # noqa: BLE001 - one bad night must not end the schedule
                LOGGER.exception(
                    "%s: the history of %s was not exported; it is tried again at the"
                    " next night or start",
                    self._entry.title,
                    self.next_day,
                )
            finally:
                self._async_notify()

    async def _async_catch_up(self) -> None:
        """Export every complete day not exported yet, oldest first."""
        recorder = get_instance(self._hass)
        if not await recorder.async_db_ready:
            return  # the recorder could not start
        # Set once migrations are done and the oldest state held is known.
        await recorder.async_recorder_ready.wait()
        # After the statistics the recorder compiles for the time it was off (queued
        # before it reported ready): exported without them, a day would stay incomplete.
        await recorder.async_block_till_done()
        self._async_check_keep_days(recorder.keep_days if recorder.auto_purge else None)
        oldest = await async_oldest_recorded(self._hass)
        yesterday = _last_complete_day()
        if self.next_day is None:
            # Just switched on: yesterday if the recorder holds all of it, else
            # tonight's day. Older days may be gone in part, or exported by the
            # action with other entities; the action is there to fill them in.
            held = oldest is not None and local_midnight(yesterday) >= oldest
            self.next_day = yesterday if held else yesterday + timedelta(days=1)
            await self._async_save()
        if oldest is None:
            return  # nothing recorded (yet): nothing can be told lost either
        lost: list[date] = []
        while self.next_day <= yesterday and local_midnight(self.next_day) < oldest:
            lost.append(self.next_day)
            self.next_day += timedelta(days=1)
        if lost:
            await self._async_report_lost(lost, recorder.keep_days)
        while self.next_day <= yesterday and self.enabled:
            day = self.next_day
            LOGGER.debug("%s: exporting the history of %s", self._entry.title, day)
            await async_export_day(self._hass, self._entry, day)
            self.last_exported = day
            self.next_day = day + timedelta(days=1)
            await self._async_save()
            self._async_notify()

    async def _async_report_lost(self, lost: list[date], keep_days: int) -> None:
        """Count days the recorder purged before their export; raise the issue naming them."""
        previous = self._lost or {}
        self._lost = {
            "count": int(previous.get("count", 0)) + len(lost),
            "first": previous.get("first") or lost[0].isoformat(),
            "last": lost[-1].isoformat(),
            "keep_days": keep_days,
        }
        await self._async_save()
        LOGGER.warning(
            "%s: the recorder had purged the history of %d day(s) from %s to %s before"
            " it could be exported (purge_keep_days is %d)",
            self._entry.title,
            len(lost),
            lost[0],
            lost[-1],
            keep_days,
        )
        self._async_raise_lost()

    @callback
    def _async_raise_lost(self) -> None:
        assert self._lost is not None
        repairs.async_raise(
            self._hass,
            self._entry,
            ISSUE_DAYS_LOST,
            severity=ir.IssueSeverity.WARNING,
            count=str(self._lost["count"]),
            first=self._lost["first"],
            last=self._lost["last"],
            keep_days=str(self._lost["keep_days"]),
        )

    @callback
    def _async_check_keep_days(self, keep_days: int | None) -> None:
        """Warn while the recorder keeps too few days for the schedule to catch up."""
        if keep_days is not None and keep_days < HISTORY_MIN_KEEP_DAYS:
            repairs.async_raise(
                self._hass,
                self._entry,
                ISSUE_KEEP_DAYS_SHORT,
                severity=ir.IssueSeverity.WARNING,
                keep_days=str(keep_days),
                min_keep_days=str(HISTORY_MIN_KEEP_DAYS),
            )
        else:
            repairs.async_clear(self._hass, self._entry, ISSUE_KEEP_DAYS_SHORT)

    async def _async_save(self) -> None:
        await self._store.async_save(
            {
                "next_day": _iso(self.next_day),
                "last_exported": _iso(self.last_exported),
                "lost": self._lost,
            }
        )
