"""`python -m scelle.cli`: the same as the `scelle` command."""

from scelle.cli.main import main

main()
