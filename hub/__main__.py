"""`python -m hub` runs the diemcau command line."""

from .cli import main

main()
