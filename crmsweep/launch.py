"""How the `crmsweep` command starts: settings for its own process that take effect only if made before Arrow
loads, then the CLI.

`MIMALLOC_PURGE_DELAY=1000`: Arrow's allocator (mimalloc, in pyarrow's wheels) hands memory freed back to
the kernel 10 ms after it is freed, by default; a scan frees and makes again hundreds of MB of column
buffers a second, and each time the kernel zeroed them anew on their next use, a 2 MB huge page at a time
(mimalloc asks for those): at 1M contacts most of the scan's 2 s of system time. Kept a second, they are
used again as they are. mimalloc reads it once, as Arrow loads: hence here, before anything imports it.

Each is set only where the environment does not set it already (an admin's own choice stands). A script
that imports crmsweep's library runs with its own process's settings.
"""

from __future__ import annotations

import os

PROCESS_ENV = {"MIMALLOC_PURGE_DELAY": "1000"}


def main() -> None:
    for name, value in PROCESS_ENV.items():
        os.environ.setdefault(name, value)
    from crmsweep.cli import main as cli_main

    cli_main()
