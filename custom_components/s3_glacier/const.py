"""Constants of the S3 Glacier Archive integration."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "s3_glacier"
LOGGER = logging.getLogger(__package__)

# Config entry data keys (the names the config flow shows and the issue fixes).
CONF_ACCESS_KEY_ID: Final = "access_key_id"
CONF_SECRET_ACCESS_KEY: Final = "secret_access_key"  # noqa: S105 - a field name, not a secret
CONF_REGION: Final = "region"
CONF_ENDPOINT_URL: Final = "endpoint_url"
CONF_BUCKET: Final = "bucket"
CONF_PREFIX: Final = "prefix"
CONF_TARGET: Final = "target"

TARGET_BUCKET: Final = "bucket"
TARGET_VAULT: Final = "vault"

# Options.
CONF_STORAGE_CLASS: Final = "storage_class"
CONF_ENCRYPTION: Final = "encryption"
CONF_KMS_KEY_ID: Final = "kms_key_id"

# Stored option values are the selector's keys: lower case (hassfest allows only
# [a-z0-9-_] there). helpers.option_value maps AWS's names onto them.
DEFAULT_REGION: Final = "us-east-1"
DEFAULT_STORAGE_CLASS: Final = "glacier_ir"
DEFAULT_ENCRYPTION: Final = "aes256"

# Regions offered in the selector (strings.json names them); any other region code
# can be typed in.
AWS_REGIONS: Final = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "af-south-1",
    "me-south-1",
)

# Options added with the catalog.
CONF_RECONCILE_HOURS: Final = "reconcile_hours"
CONF_PRICE_OVERRIDES: Final = "price_overrides"
DEFAULT_RECONCILE_HOURS: Final = 24

# Options added with the transfers.
CONF_PART_SIZE_MIB: Final = "part_size_mib"
CONF_CONCURRENCY: Final = "concurrency"
DEFAULT_PART_SIZE_MIB: Final = 16
DEFAULT_CONCURRENCY: Final = 4
# Transfers of one entry that run at once; further ones wait their turn.
MAX_PARALLEL_TRANSFERS: Final = 2

# Events.
EVENT_ARCHIVED: Final = f"{DOMAIN}_archived"
EVENT_RESTORE_COMPLETED: Final = f"{DOMAIN}_restore_completed"
EVENT_RESTORE_FAILED: Final = f"{DOMAIN}_restore_failed"
EVENT_DELETED: Final = f"{DOMAIN}_deleted"
# A restored copy expired before it was downloaded and a new restore was requested.
EVENT_RESTORE_REQUESTED_AGAIN: Final = f"{DOMAIN}_restore_requested_again"

# Legacy Glacier vaults.
CONF_VAULT_NAME: Final = "vault_name"
CONF_TIER: Final = "tier"
DEFAULT_VAULT_PART_SIZE_MIB: Final = 8
DEFAULT_TIER: Final = "standard"
# Part sizes Glacier accepts: 1 MiB times a power of two, at most 4 GiB.
VAULT_PART_SIZES_MIB: Final = tuple(2**n for n in range(13))
META_INVENTORY_JOB: Final = "inventory_job"

# Backups (Home Assistant's backup agent on S3 bucket entries).
CONF_BACKUP_STORAGE_CLASS: Final = "backup_storage_class"
# Option values are the storage class names in lower case.
DEFAULT_BACKUP_STORAGE_CLASS: Final = "glacier_ir"
# How long the listing of backups is reused (our own uploads and deletes clear it).
BACKUP_LIST_CACHE_SECONDS: Final = 300
# How many days a restored copy of a cold backup stays readable.
BACKUP_RESTORE_DAYS: Final = 3
# Sidecars larger than this are not a backup's metadata.
BACKUP_SIDECAR_MAX_BYTES: Final = 1024 * 1024
DATA_BACKUP_AGENT_LISTENERS: Final = f"{DOMAIN}.backup_agent_listeners"

# History export (the export_history action).
# Under the entry's prefix unless the action names another key prefix.
HISTORY_FOLDER: Final = "history"
# States are read and written a window at a time (all entities), so memory holds one
# window of a busy day, not the day; entity IDs per query keep the SQL small.
HISTORY_STATES_WINDOW_SECONDS: Final = 3600
HISTORY_ENTITY_BATCH: Final = 500
# Statistics per query: what one batch holds is one day (24 hours) of these.
HISTORY_STATISTIC_BATCH: Final = 50

# The daily history export (an option of bucket entries, off by default).
CONF_DAILY_HISTORY_EXPORT: Final = "daily_history_export"
# Minutes past the UTC hour that follows a day's local midnight before the day is
# exported: the recorder compiles that hour's statistics a few seconds after it ends,
# and its nightly purge (04:12) is hours away. The schedule looks hourly at this minute.
HISTORY_EXPORT_MINUTE: Final = 20
# With purge_keep_days = k a day can wait k - 1 nights for its export before the
# nightly purge takes its first hours. Below this, two missed or failed nights (a
# weekend with Home Assistant off, a long AWS outage) lose a day: a repair issue
# warns before that happens.
HISTORY_MIN_KEEP_DAYS: Final = 3
