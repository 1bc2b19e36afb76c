"""Checks over Entra ID (Microsoft Graph) resources."""
