"""Load generator and benchmarks: the hub measured against bare aiohttp on the same machine."""
