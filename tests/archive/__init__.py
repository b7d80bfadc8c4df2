"""Tests for the archive engine (no Home Assistant)."""
