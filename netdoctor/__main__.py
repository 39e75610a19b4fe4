"""Run netdoctor as ``python -m netdoctor``, the same as the ``netdoctor`` command."""

import sys

from netdoctor.cli import main

sys.exit(main(prog_name="netdoctor"))
