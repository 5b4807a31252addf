"""The `synscale` command line.

Each service contributes its own sub-commands through a module `synscale_<service>.cli`
exposing `add_commands(subparsers)`; a service that is not installed simply contributes
nothing, so the prompter image's CLI carries no torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from synscale.errors import SynscaleError

SERVICE_CLIS = (
    "synscale_prompter.cli",
    "synscale_generator.cli",
    "synscale_scorer.cli",
    "synscale_trainer.cli",
    "synscale_analyzer.cli",
)


_GROUPS: dict[int, dict[str, argparse._SubParsersAction]] = {}


def group(subparsers: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    """The sub-command group `synscale NAME ...`, shared by every service that adds to it.

    Two services may contribute commands to one group (e.g. `synscale embedded
    train-generator` from the generator and `synscale embedded train-reference` from the
    scorer); argparse alone would reject the second `add_parser(NAME)`.
    """
    groups = _GROUPS.setdefault(id(subparsers), {})
    if name not in groups:
        parser = subparsers.add_parser(name, help=help)
        groups[name] = parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND")
    return groups[name]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synscale",
        description="Scaling laws of synthetic images for model training.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from synscale import dlq

    dlq.add_commands(sub)
    for name in SERVICE_CLIS:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            if exc.name and name.startswith(exc.name.split(".")[0]):
                continue  # service not installed (or has no CLI yet)
            raise
        module.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SynscaleError as exc:
        print(f"synscale: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("synscale: interrupted; finished work is kept and resumes on the next run", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
