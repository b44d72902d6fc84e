"""`python -m bench` (or `make bench`): see bench/run.py."""

from .run import main

main()
