"""The `crmsweep` command's entry point, light enough to import in no time.

The command line itself imports pandas, Arrow, rapidfuzz and the rest: most of a second, the very moment an
admin who spots a typo presses Ctrl-C. Imported here, under a handler, that Ctrl-C is answered as any other
(one line, exit 130, the JSON error with --json) instead of a traceback from inside pandas.
"""

from __future__ import annotations

import json
import sys

from crmsweep.errors import EXIT_INTERRUPTED


def main() -> None:
    try:
        from crmsweep.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("crmsweep: interrupted\n")
        if "--json" in sys.argv[1:]:
            sys.stdout.write(json.dumps({"error": {"message": "interrupted", "exit_code": EXIT_INTERRUPTED}}) + "\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
    run()
