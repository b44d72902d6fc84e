"""The `diemcau` command line, one module per command."""
