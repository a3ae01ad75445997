"""`clusterset` command line: the parser, each command module's subcommands, and dispatch.

A command module (one per feature or concern) adds its subcommands with `add_parsers(sub)`, each with
`set_defaults(run=...)`: a function from the parsed arguments to the exit code; with `check=...` and `parser=...`,
a function that names what is wrong with flags that are valid one by one but not together (None: nothing).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from clusterset.cli import dns, fleet, inventory, manifests, placement, server
from clusterset.cli.common import Command

EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a tool that SIGPIPE ended (`yes | head`)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="clusterset", description="A multi-cluster control plane for Kubernetes.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (fleet, inventory, placement, server, dns, manifests):
        module.add_parsers(sub)

    args = parser.parse_args(argv)
    problem = args.check(args) if getattr(args, "check", None) is not None else None
    if problem is not None:  # flags fine one by one but not together: a usage error, as argparse's own
        args.parser.error(problem)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run: Command = args.run
    try:
        code = run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (`clusterset status | head -1`): end quietly, as Unix tools do; stdout goes
        # nowhere, so that flushing it at exit does not complain either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code


if __name__ == "__main__":
    sys.exit(main())
