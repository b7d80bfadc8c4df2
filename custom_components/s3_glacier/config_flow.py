"""Config flow for S3 Glacier Archive: bucket (vault later), reauth, reconfigure, options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
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
from .helpers import connect, entry_title, is_vault, normalize_prefix, unique_id_from_data

_TEXT = TextSelector()
_URL = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
_PASSWORD = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
_REGION = SelectSelector(
    SelectSelectorConfig(
        options=list(AWS_REGIONS),
        custom_value=True,
        mode=SelectSelectorMode.DROPDOWN,
        sort=True,
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

OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_STORAGE_CLASS, default=DEFAULT_STORAGE_CLASS): SelectSelector(
            SelectSelectorConfig(
                options=[str(c) for c in S3_STORAGE_CLASSES],
                translation_key=CONF_STORAGE_CLASS,
            )
        ),
        vol.Required(CONF_ENCRYPTION, default=DEFAULT_ENCRYPTION): SelectSelector(
            SelectSelectorConfig(
                options=[str(e) for e in ServerSideEncryption],
                translation_key=CONF_ENCRYPTION,
            )
        ),
        vol.Optional(CONF_KMS_KEY_ID): _TEXT,
        vol.Required(CONF_PART_SIZE_MIB, default=DEFAULT_PART_SIZE_MIB): NumberSelector(
            NumberSelectorConfig(
                min=5, max=128, step=1, mode=NumberSelectorMode.BOX, unit_of_measurement="MiB"
            )
        ),
        vol.Required(CONF_CONCURRENCY, default=DEFAULT_CONCURRENCY): NumberSelector(
            NumberSelectorConfig(min=1, max=16, step=1, mode=NumberSelectorMode.BOX)
        ),
        vol.Required(CONF_RECONCILE_HOURS, default=DEFAULT_RECONCILE_HOURS): NumberSelector(
            NumberSelectorConfig(
                min=1, max=720, step=1, mode=NumberSelectorMode.BOX, unit_of_measurement="h"
            )
        ),
        vol.Optional(CONF_PRICE_OVERRIDES, default={}): section(
            vol.Schema(
                {
                    vol.Optional(str(storage_class)): NumberSelector(
                        NumberSelectorConfig(
                            min=0,
                            step="any",
                            mode=NumberSelectorMode.BOX,
                            unit_of_measurement="USD/GB-month",
                        )
                    )
                    for storage_class in S3_STORAGE_CLASSES
                }
            ),
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
        vol.Required(CONF_CONCURRENCY, default=DEFAULT_CONCURRENCY): NumberSelector(
            NumberSelectorConfig(min=1, max=16, step=1, mode=NumberSelectorMode.BOX)
        ),
        vol.Required(CONF_TIER, default=DEFAULT_TIER): SelectSelector(
            SelectSelectorConfig(options=[str(t) for t in RestoreTier], translation_key="tier")
        ),
        vol.Optional(CONF_PRICE_OVERRIDES, default={}): section(
            vol.Schema(
                {
                    vol.Optional(str(StorageClass.VAULT)): NumberSelector(
                        NumberSelectorConfig(
                            min=0,
                            step="any",
                            mode=NumberSelectorMode.BOX,
                            unit_of_measurement="USD/GB-month",
                        )
                    )
                }
            ),
            {"collapsed": True},
        ),
    }
)
_WHOLE_NUMBERS = (CONF_PART_SIZE_MIB, CONF_CONCURRENCY, CONF_RECONCILE_HOURS)


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
    """Create an entry for one bucket (and prefix) or, later, one Glacier vault."""

    VERSION = 1

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> S3GlacierOptionsFlow:
        """Options: how new objects are stored."""
        return S3GlacierOptionsFlow()

    async def _async_validate(self, data: Mapping[str, Any]) -> dict[str, str]:
        """Connect with a real call in the executor; return form errors (empty when fine)."""
        try:
            # One attempt: the user is waiting on the form and can simply submit again.
            target = await self.hass.async_add_executor_job(connect, data, None, 1)
        except (AuthError, AccessDeniedError):
            return {"base": "invalid_auth"}
        except VaultNotFoundError:
            return {CONF_VAULT_NAME: "vault_not_found"}
        except ServiceUnavailableError:
            return {"base": "vault_service_unavailable"}
        except BucketNotFoundError:
            return {CONF_BUCKET: "bucket_not_found"}
        except InvalidRegionError:
            return {CONF_REGION: "invalid_region"}
        except InvalidRequestError:
            return {CONF_VAULT_NAME if is_vault(data) else CONF_BUCKET: "invalid_name"}
        except InvalidEndpointError:
            return {CONF_ENDPOINT_URL: "invalid_endpoint"}
        except (CannotConnectError, ThrottledError):
            return {"base": "cannot_connect"}
        except ArchiveError as err:
            LOGGER.warning("Unexpected answer while checking the location: %s", err)
            return {"base": "unknown"}
        await self.hass.async_add_executor_job(target.close)
        return {}

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
            if not (errors := await self._async_validate(data)):
                return self.async_create_entry(title=entry_title(data), data=data, options=options)
        return self._async_show(target, schema, user_input, errors)

    def _async_show(
        self,
        step_id: str,
        schema: vol.Schema,
        user_input: dict[str, Any] | None,
        errors: dict[str, str],
    ) -> ConfigFlowResult:
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
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
            if not errors and not (errors := await self._async_validate(data)):
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
        """Change region, endpoint, and bucket and prefix or vault; keys stay."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            location = _clean(user_input)
            schema = VAULT_LOCATION_SCHEMA if is_vault(entry.data) else LOCATION_SCHEMA
            if missing := _missing(schema, location):
                return self._async_show("reconfigure", schema, user_input, missing)
            data = {
                CONF_ACCESS_KEY_ID: entry.data[CONF_ACCESS_KEY_ID],
                CONF_SECRET_ACCESS_KEY: entry.data[CONF_SECRET_ACCESS_KEY],
                CONF_TARGET: entry.data.get(CONF_TARGET, TARGET_BUCKET),
                **location,
            }
            unique_id = unique_id_from_data(data)
            if any(
                other.unique_id == unique_id and other.entry_id != entry.entry_id
                for other in self._async_current_entries(include_ignore=False)
            ):
                return self.async_abort(reason="already_configured")
            if not (errors := await self._async_validate(data)):
                return self.async_update_reload_and_abort(
                    entry, unique_id=unique_id, title=entry_title(data), data=data
                )
        suggested = user_input if user_input is not None else dict(entry.data)
        schema = VAULT_LOCATION_SCHEMA if is_vault(entry.data) else LOCATION_SCHEMA
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )


class S3GlacierOptionsFlow(OptionsFlow):
    """How new archives are made: class, encryption and parts (bucket) or parts and tier (vault)."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show and save the options."""
        if user_input is not None:
            options = _clean(user_input)
            if options.get(CONF_ENCRYPTION) != ServerSideEncryption.KMS:
                options.pop(CONF_KMS_KEY_ID, None)
            for name in _WHOLE_NUMBERS:
                if name in options:
                    options[name] = int(options[name])
            options[CONF_PRICE_OVERRIDES] = {
                storage_class: price
                for storage_class, price in options.get(CONF_PRICE_OVERRIDES, {}).items()
                if price is not None
            }
            return self.async_create_entry(data=options)
        schema = VAULT_OPTIONS_SCHEMA if is_vault(self.config_entry.data) else OPTIONS_SCHEMA
        suggested = dict(self.config_entry.options)
        if CONF_PART_SIZE_MIB in suggested and schema is VAULT_OPTIONS_SCHEMA:
            suggested[CONF_PART_SIZE_MIB] = str(suggested[CONF_PART_SIZE_MIB])
        return self.async_show_form(
            step_id="init", data_schema=self.add_suggested_values_to_schema(schema, suggested)
        )
