"""Checks over Azure subscriptions and resources, as Resource Graph and ARM describe them."""
