"""The ``--profiles DIR`` option shared by every command that reads a site config. Light to
import: the command line builds its parser with it before anything heavy is loaded."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coldchain.profiles.registry import ProfileRegistry


def add_profiles_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--profiles DIR`` (repeatable) to ``parser``."""
    parser.add_argument(
        "--profiles",
        action="append",
        default=[],
        metavar="DIR",
        help="profile directory (default: the shipped profiles); repeatable",
    )


def load_profiles(args: argparse.Namespace) -> ProfileRegistry:
    """The profiles ``--profiles`` names (the shipped ones when none); raises
    :class:`~coldchain.config.errors.InvalidConfigError` listing every error."""
    from coldchain.profiles.registry import ProfileRegistry

    return ProfileRegistry.load(*[Path(d) for d in args.profiles])
