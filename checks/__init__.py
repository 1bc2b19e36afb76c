"""Annex A 2022 catalogue and the checks that judge collected evidence."""
