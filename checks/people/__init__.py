"""Checks on people joined across sources (the derived source `annexa-people`)."""
