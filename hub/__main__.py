"""`python -m hub` runs the diemcau command line."""

from hub.cli.main import main

main()
