"""Checks over Okta resources (the management API v1)."""
