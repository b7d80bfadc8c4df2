"""Tests for the S3 Glacier Archive integration."""
