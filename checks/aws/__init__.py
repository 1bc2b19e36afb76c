"""Checks over AWS resources."""
