"""Shared helpers for the integration and end-to-end tests: the testbed and Compose projects."""
