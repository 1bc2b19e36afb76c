"""Checks over a Google Workspace customer: its users, admin roles and security settings."""
