"""``actial-ros fastdds-profile``: print or write the Fast DDS profile with a 16 MB shared-memory segment
(:data:`actial_ros.dds.FASTDDS_SHM_PROFILE_XML`; use it with ``FASTDDS_DEFAULT_PROFILES_FILE``).

    actial-ros fastdds-profile [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ['configure_parser', 'run']


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Flags of ``actial-ros fastdds-profile``."""
    parser.add_argument('--out', type=Path, help='write the profile to this file (default: print it)')


def run(args: argparse.Namespace) -> int:
    """Print or write the profile; 0."""
    from actial_ros.dds import FASTDDS_SHM_PROFILE_XML

    if args.out:
        args.out.write_text(FASTDDS_SHM_PROFILE_XML)
    else:
        sys.stdout.write(FASTDDS_SHM_PROFILE_XML)
    return 0
