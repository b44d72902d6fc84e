"""The hostile-input fuzzer of tests/test_fuzz.py with many more examples per property.

    python -m bench.fuzz --examples 2000

Prints how many websocket frames, HTTP requests and config files were thrown at the hub.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=2000, help="hypothesis examples per property (default 2000)")
    args = parser.parse_args()
    env = {**os.environ, "DIEMCAU_FUZZ_EXAMPLES": str(args.examples)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "tests/test_fuzz.py"],
                          cwd=ROOT, env=env)
    raise SystemExit(done.returncode)


if __name__ == "__main__":
    main()
