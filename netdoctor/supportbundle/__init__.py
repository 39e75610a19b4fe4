"""Support bundles: capture every node's evidence into one redacted, optionally anonymized archive.

:func:`write_bundle` runs the capture layout's commands per node, reads the
config files a reviewer needs, removes secrets, optionally maps addresses and
names, checks the result and packs one ``.tar.gz`` that ``netdoctor check
--bundle`` reads. The CLI is ``netdoctor bundle``; the TUI's ``b`` key calls
the same function.
"""

from netdoctor.supportbundle.writer import (
    BundleOptions,
    BundleResult,
    BundleWriteError,
    write_bundle,
)

__all__ = ["BundleOptions", "BundleResult", "BundleWriteError", "write_bundle"]
