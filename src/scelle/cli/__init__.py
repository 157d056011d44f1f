"""The `scelle` command line: thin layers over the core and the store."""
