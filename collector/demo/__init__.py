"""The embedded demo: an in-process AWS emulator seeded with a small organisation's gaps."""
