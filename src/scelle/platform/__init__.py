"""The web platform: buyers' organisations, the key registry and its CA, tenders.

A Django project with one app per feature (DESIGN.md). It imports the core
only: never the key store, so it cannot hold a buyer's private key.
"""
