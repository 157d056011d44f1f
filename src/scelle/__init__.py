"""Scellé: sealed bids for public procurement."""

__version__ = "0.1.0"
