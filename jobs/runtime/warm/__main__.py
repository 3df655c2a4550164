"""``python -m jobs.runtime.warm run JOB_ID | serve KEY [--address=GCS] | prestart``."""

from __future__ import annotations

import sys

from jobs.runtime.warm.launcher import launch, prestart

USAGE = "usage: python -m jobs.runtime.warm run JOB_ID | serve KEY [--address=GCS] | prestart"


def main(argv: list[str] | None = None) -> int:
    """Launch a driver, serve as this node's host, or start the host ahead of the first job.
    The host's modules are imported only to serve: the launcher stays standard library."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "run" and argv[1].isdigit():
        launch([argv[1]])
    if len(argv) in (2, 3) and argv[0] == "serve":  # serve KEY [--address=GCS]
        from jobs.runtime.warm.host import serve

        return serve(argv[1])
    if argv == ["prestart"]:
        return prestart()
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
