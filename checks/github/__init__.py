"""Checks over a GitHub organisation: its settings, members and outside collaborators, and its
repositories' default-branch protection, secret scanning and Dependabot."""
