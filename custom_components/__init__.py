"""Custom integrations of this repository (the test and dev harness import from here)."""
