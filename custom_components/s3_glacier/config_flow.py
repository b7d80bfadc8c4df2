"""Config flow for S3 Glacier Archive: bucket or vault, reauth, reconfigure, options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import voluptuous as vol

from . import async_apply_options
from .archive.errors import (
    AccessDeniedError,
    ArchiveError,
    AuthError,
    BucketNotFoundError,
    CannotConnectError,
    InvalidEndpointError,
    InvalidRegionError,
    InvalidRequestError,
    ServiceUnavailableError,
    ThrottledError,
    VaultNotFoundError,
)
from .archive.models import S3_STORAGE_CLASSES, RestoreTier, ServerSideEncryption, StorageClass
from .const import (
    AWS_REGIONS,
    CONF_ACCESS_KEY_ID,
    CONF_BACKUP_STORAGE_CLASS,
    CONF_BUCKET,
    CONF_CONCURRENCY,
    CONF_DAILY_HISTORY_EXPORT,
    CONF_ENCRYPTION,
    CONF_ENDPOINT_URL,
    CONF_KMS_KEY_ID,
    CONF_PART_SIZE_MIB,
    CONF_PREFIX,
    CONF_PRICE_OVERRIDES,
    CONF_RECONCILE_HOURS,
    CONF_REGION,
    CONF_SECRET_ACCESS_KEY,
    CONF_STORAGE_CLASS,
    CONF_TARGET,
    CONF_TIER,
    CONF_VAULT_NAME,
    DEFAULT_BACKUP_STORAGE_CLASS,
    DEFAULT_CONCURRENCY,
    DEFAULT_ENCRYPTION,
    DEFAULT_PART_SIZE_MIB,
    DEFAULT_RECONCILE_HOURS,
    DEFAULT_REGION,
    DEFAULT_STORAGE_CLASS,
    DEFAULT_TIER,
    DEFAULT_VAULT_PART_SIZE_MIB,
    DOMAIN,
    LOGGER,
    TARGET_BUCKET,
    TARGET_VAULT,
    VAULT_PART_SIZES_MIB,
)
from .helpers import (
    connect,
    entry_title,
    is_vault,
    normalize_prefix,
    option_value,
    unique_id_from_data,
)

_TEXT = TextSelector()
_URL = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
_PASSWORD = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
_REGION = SelectSelector(
    SelectSelectorConfig(
        options=list(AWS_REGIONS),
        custom_value=True,
        mode=SelectSelectorMode.DROPDOWN,
        sort=True,
        translation_key=CONF_REGION,
    )
)

CREDENTIALS_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_ACCESS_KEY_ID): _TEXT,
        vol.Required(CONF_SECRET_ACCESS_KEY): _PASSWORD,
    }
)
LOCATION_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_REGION, default=DEFAULT_REGION): _REGION,
        vol.Optional(CONF_ENDPOINT_URL): _URL,
        vol.Required(CONF_BUCKET): _TEXT,
        vol.Optional(CONF_PREFIX): _TEXT,
    }
)
BUCKET_SCHEMA = CREDENTIALS_SCHEMA.extend(LOCATION_SCHEMA.schema)
VAULT_LOCATION_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_REGION, default=DEFAULT_REGION): _REGION,
        vol.Optional(CONF_ENDPOINT_URL): _URL,
        vol.Required(CONF_VAULT_NAME): _TEXT,
    }
)
VAULT_SCHEMA = CREDENTIALS_SCHEMA.extend(VAULT_LOCATION_SCHEMA.schema)
# Reconfigure: the keys may change too; an empty secret keeps the stored one.
RECONFIGURE_CREDENTIALS_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_ACCESS_KEY_ID): _TEXT,
        vol.Optional(CONF_SECRET_ACCESS_KEY): _PASSWORD,
    }
)


def _select(options: list[str], translation_key: str) -> SelectSelector:
    return SelectSelector(SelectSelectorConfig(options=options, translation_key=translation_key))


class _Range(NamedTuple):
    """The bounds of a whole-number option, its error and its placeholders' stem."""

    low: int
    high: int
    error: str
    stem: str  # the texts use {<stem>_min} and {<stem>_max}


# Checked in the step, not by the selector, so that a wrong value gets an error at its
# field that names the range (a selector's own check shows "Value 1.0 is too small"
# above the whole form).
_RANGES: dict[str, _Range] = {
    CONF_PART_SIZE_MIB: _Range(5, 128, "part_size_out_of_range", "part_size"),
    CONF_CONCURRENCY: _Range(1, 16, "concurrency_out_of_range", "concurrency"),
    CONF_RECONCILE_HOURS: _Range(1, 720, "reconcile_out_of_range", "reconcile"),
}
RANGE_PLACEHOLDERS = {
    f"{bounds.stem}_{end}": str(value)
    for bounds in _RANGES.values()
    for end, value in (("min", bounds.low), ("max", bounds.high))
}


def _whole_number(unit: str | None = None) -> NumberSelector:
    config = NumberSelectorConfig(step=1, mode=NumberSelectorMode.BOX)
    if unit:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


_PRICE = NumberSelector(
    NumberSelectorConfig(
        min=0, step="any", mode=NumberSelectorMode.BOX, unit_of_measurement="USD/GB-month"
    )
)

OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_STORAGE_CLASS, default=DEFAULT_STORAGE_CLASS): _select(
            [option_value(c) for c in S3_STORAGE_CLASSES], CONF_STORAGE_CLASS
        ),
        vol.Required(CONF_ENCRYPTION, default=DEFAULT_ENCRYPTION): _select(
            [option_value(e) for e in ServerSideEncryption], CONF_ENCRYPTION
        ),
        vol.Optional(CONF_KMS_KEY_ID): _TEXT,
        vol.Required(CONF_PART_SIZE_MIB, default=DEFAULT_PART_SIZE_MIB): _whole_number("MiB"),
        vol.Required(CONF_CONCURRENCY, default=DEFAULT_CONCURRENCY): _whole_number(),
        vol.Required(CONF_RECONCILE_HOURS, default=DEFAULT_RECONCILE_HOURS): _whole_number("h"),
        vol.Optional(CONF_PRICE_OVERRIDES, default={}): section(
            vol.Schema({vol.Optional(str(c)): _PRICE for c in S3_STORAGE_CLASSES}),
            {"collapsed": True},
        ),
        vol.Required(
            CONF_BACKUP_STORAGE_CLASS, default=DEFAULT_BACKUP_STORAGE_CLASS
        ): SelectSelector(
            SelectSelectorConfig(
                options=[str(c).lower() for c in S3_STORAGE_CLASSES],
                translation_key=CONF_BACKUP_STORAGE_CLASS,
            )
        ),
        # The tier a cold backup's download restores with (the engine's "tier" option).
        vol.Required(CONF_TIER, default=DEFAULT_TIER): _select(
            [option_value(t) for t in RestoreTier], CONF_TIER
        ),
        # Absent (an entry stored before this option, or a form without it) reads as
        # off: no migration, and no value stored until the user sets one.
        vol.Optional(CONF_DAILY_HISTORY_EXPORT): BooleanSelector(),
    }
)
VAULT_OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_PART_SIZE_MIB, default=str(DEFAULT_VAULT_PART_SIZE_MIB)): SelectSelector(
            SelectSelectorConfig(
                options=[str(size) for size in VAULT_PART_SIZES_MIB],
                translation_key="vault_part_size",
                mode=SelectSelectorMode.DROPDOWN,
            )
        ),
        vol.Required(CONF_CONCURRENCY, default=DEFAULT_CONCURRENCY): _whole_number(),
        vol.Required(CONF_TIER, default=DEFAULT_TIER): _select(
            [option_value(t) for t in RestoreTier], "vault_tier"
        ),
        vol.Optional(CONF_PRICE_OVERRIDES, default={}): section(
            vol.Schema({vol.Optional(str(StorageClass.VAULT)): _PRICE}),
            {"collapsed": True},
        ),
    }
)
_KMS = option_value(ServerSideEncryption.KMS)
# Shown in the invalid_endpoint error (hassfest keeps URLs out of strings.json).
ENDPOINT_EXAMPLE = "https://s3.example.com"


def _missing(schema: vol.Schema, data: Mapping[str, Any]) -> dict[str, str]:
    """Required fields left empty (or only blanks): the form's own check lets those by."""
    return {
        str(marker): "required"
        for marker in schema.schema
        if isinstance(marker, vol.Required) and str(marker) not in data
    }


def _clean(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Drop empty optional fields and normalise the prefix and endpoint."""
    data = {k: v.strip() if isinstance(v, str) else v for k, v in user_input.items()}
    if data.get(CONF_PREFIX) is not None:
        data[CONF_PREFIX] = normalize_prefix(data[CONF_PREFIX])
    if data.get(CONF_ENDPOINT_URL):
        data[CONF_ENDPOINT_URL] = data[CONF_ENDPOINT_URL].rstrip("/")
    return {k: v for k, v in data.items() if v not in ("", None)}


class S3GlacierConfigFlow(ConfigFlow, domain=DOMAIN):
    """Create an entry for one bucket (and prefix) or one legacy Glacier vault."""

    VERSION = 1
    # 1.2: lower-case option values (async_migrate_entry converts stored ones).
    MINOR_VERSION = 2

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> S3GlacierOptionsFlow:
        """Options: how new objects are stored."""
        return S3GlacierOptionsFlow()

    async def _async_validate(
        self, data: Mapping[str, Any]
    ) -> tuple[dict[str, str], Mapping[str, Any]]:
        """Connect with a real call in the executor.

        Returns the form errors (empty when fine) and the data as the service reported
        it (a bucket's real region on AWS).
        """
        try:
            # One attempt: the user is waiting on the form and can simply submit again.
            target, reported = await self.hass.async_add_executor_job(connect, data, None, 1)
        except AuthError:
            return {"base": "invalid_auth"}, data
        except AccessDeniedError:
            # Valid keys: new ones would not help, a policy that allows the check would.
            return {"base": "access_denied"}, data
        except VaultNotFoundError:
            return {CONF_VAULT_NAME: "vault_not_found"}, data
        except ServiceUnavailableError:
            return {"base": "vault_service_unavailable"}, data
        except BucketNotFoundError:
            return {CONF_BUCKET: "bucket_not_found"}, data
        except InvalidRegionError:
            return {CONF_REGION: "invalid_region"}, data
        except InvalidRequestError:
            return {CONF_VAULT_NAME if is_vault(data) else CONF_BUCKET: "invalid_name"}, data
        except InvalidEndpointError:
            return {CONF_ENDPOINT_URL: "invalid_endpoint"}, data
        except (CannotConnectError, ThrottledError):
            return {"base": "cannot_connect"}, data
        except ArchiveError as err:
            LOGGER.warning("Unexpected answer while checking the location: %s", err)
            return {"base": "unknown"}, data
        except Exception:  # noqa: BLE001 - the form must answer, whatever went wrong
            LOGGER.exception("Unexpected error while checking the location")
            return {"base": "unknown"}, data
        await self.hass.async_add_executor_job(target.close)
        return {}, reported

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Pick what to archive to: an S3 bucket or a legacy Glacier vault."""
        return self.async_show_menu(step_id="user", menu_options=[TARGET_BUCKET, TARGET_VAULT])

    async def async_step_bucket(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for keys, region, endpoint and bucket; check them against the service."""
        return await self._async_new_entry(
            TARGET_BUCKET,
            BUCKET_SCHEMA,
            user_input,
            {CONF_STORAGE_CLASS: DEFAULT_STORAGE_CLASS, CONF_ENCRYPTION: DEFAULT_ENCRYPTION},
        )

    async def async_step_vault(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for keys, region, endpoint and vault; check them with describe_vault."""
        return await self._async_new_entry(
            TARGET_VAULT,
            VAULT_SCHEMA,
            user_input,
            {
                CONF_PART_SIZE_MIB: DEFAULT_VAULT_PART_SIZE_MIB,
                CONF_CONCURRENCY: DEFAULT_CONCURRENCY,
                CONF_TIER: DEFAULT_TIER,
            },
        )

    async def _async_new_entry(
        self,
        target: str,
        schema: vol.Schema,
        user_input: dict[str, Any] | None,
        options: dict[str, Any],
    ) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            data = _clean(user_input) | {CONF_TARGET: target}
            if missing := _missing(schema, data):
                return self._async_show(target, schema, user_input, missing)
            await self.async_set_unique_id(unique_id_from_data(data))
            self._abort_if_unique_id_configured()
            errors, reported = await self._async_validate(data)
            if not errors:
                # The region S3 reports may differ from the one entered.
                await self.async_set_unique_id(
                    unique_id_from_data(reported), raise_on_progress=False
                )
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=entry_title(reported), data=dict(reported), options=options
                )
        return self._async_show(target, schema, user_input, errors)

    def _async_show(
        self,
        step_id: str,
        schema: vol.Schema,
        user_input: Mapping[str, Any] | None,
        errors: dict[str, str],
    ) -> ConfigFlowResult:
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
            description_placeholders={"endpoint_example": ENDPOINT_EXAMPLE},
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """Start reauth: the service refused the stored keys."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for new keys and check them before saving."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {**entry.data, **_clean(user_input)}
            errors = _missing(CREDENTIALS_SCHEMA, _clean(user_input))
            if not errors:
                errors, _ = await self._async_validate(data)
            if not errors:
                # No update listener: this reload is the entry's only one.
                return self.async_update_reload_and_abort(entry, data=data)
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=self.add_suggested_values_to_schema(
                CREDENTIALS_SCHEMA, {CONF_ACCESS_KEY_ID: entry.data[CONF_ACCESS_KEY_ID]}
            ),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change keys, region, endpoint, and bucket and prefix or vault."""
        entry = self._get_reconfigure_entry()
        location_schema = VAULT_LOCATION_SCHEMA if is_vault(entry.data) else LOCATION_SCHEMA
        schema = RECONFIGURE_CREDENTIALS_SCHEMA.extend(location_schema.schema)
        errors: dict[str, str] = {}
        if user_input is not None:
            cleaned = _clean(user_input)
            if missing := _missing(schema, cleaned):
                return self._async_show("reconfigure", schema, user_input, missing)
            data = {
                CONF_SECRET_ACCESS_KEY: entry.data[CONF_SECRET_ACCESS_KEY],
                CONF_TARGET: entry.data.get(CONF_TARGET, TARGET_BUCKET),
                **cleaned,
            }
            errors, reported = await self._async_validate(data)
            if not errors:
                if reported == entry.data:
                    return self.async_abort(reason="no_changes")
                unique_id = unique_id_from_data(reported)
                if any(
                    other.unique_id == unique_id and other.entry_id != entry.entry_id
                    for other in self._async_current_entries(include_ignore=False)
                ):
                    return self.async_abort(reason="already_configured")
                # No update listener: this reload is the entry's only one.
                return self.async_update_reload_and_abort(
                    entry, unique_id=unique_id, title=entry_title(reported), data=reported
                )
        suggested = user_input if user_input is not None else dict(entry.data)
        suggested = {k: v for k, v in suggested.items() if k != CONF_SECRET_ACCESS_KEY}
        return self._async_show("reconfigure", schema, suggested, errors)


def _option_errors(schema: vol.Schema, options: Mapping[str, Any]) -> dict[str, str]:
    """Field errors of the options: numbers out of range, a KMS key without KMS."""
    errors: dict[str, str] = {}
    numbers = {str(m) for m, field in schema.schema.items() if isinstance(field, NumberSelector)}
    for name, bounds in _RANGES.items():
        value = options.get(name)
        if name not in numbers or value is None:
            continue  # a vault's part size is picked from a list
        whole = isinstance(value, float | int) and value == int(value)
        if not (whole and bounds.low <= value <= bounds.high):
            errors[name] = bounds.error
    encryption = options.get(CONF_ENCRYPTION)
    if options.get(CONF_KMS_KEY_ID) and encryption is not None and encryption != _KMS:
        errors[CONF_KMS_KEY_ID] = "kms_key_without_kms"
    return errors


class S3GlacierOptionsFlow(OptionsFlow):
    """How new archives are made: class, encryption and parts (bucket) or parts and tier (vault).

    The options are applied to the loaded entry at once, without a reload (prices show
    immediately; an upload running keeps its own settings).
    """

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show and save a bucket's options (a vault has its own step)."""
        if is_vault(self.config_entry.data):
            return await self.async_step_vault(user_input)
        return await self._async_step("init", OPTIONS_SCHEMA, user_input)

    async def async_step_vault(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show and save a vault's options: parts, threads, tier and price."""
        return await self._async_step("vault", VAULT_OPTIONS_SCHEMA, user_input)

    async def _async_step(
        self, step_id: str, schema: vol.Schema, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            options = _clean(user_input)
            if not (errors := _option_errors(schema, options)):
                for name in _RANGES:
                    if name in options:
                        options[name] = int(options[name])
                options[CONF_PRICE_OVERRIDES] = {
                    storage_class: price
                    for storage_class, price in options.get(CONF_PRICE_OVERRIDES, {}).items()
                    if price is not None
                }
                return await self._async_save(options)
        suggested = dict(self.config_entry.options) if user_input is None else user_input
        if schema is VAULT_OPTIONS_SCHEMA and CONF_PART_SIZE_MIB in suggested:
            suggested[CONF_PART_SIZE_MIB] = str(suggested[CONF_PART_SIZE_MIB])
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders=RANGE_PLACEHOLDERS,
        )

    async def _async_save(self, options: dict[str, Any]) -> ConfigFlowResult:
        """Store the options and apply them to the loaded entry, without a reload.

        The entry has no update listener (its flows reload it themselves), so the
        options are stored and applied here; finishing the flow then finds them
        unchanged.
        """
        entry = self.config_entry
        self.hass.config_entries.async_update_entry(entry, options=options)
        await async_apply_options(self.hass, entry)
        return self.async_create_entry(data=options)
