"""Run netdoctor as ``python -m netdoctor``, the same as the ``netdoctor`` command."""

from netdoctor.cli import main

main(prog_name="netdoctor")
