"""Annexa: continuous, tamper-evident evidence for ISO/IEC 27001:2022 Annex A."""

__version__ = "0.1.0"
