"""The checks engine: the check registry, and running checks over a snapshot.

A check is a pure function from a :class:`ClusterSnapshot` to findings, declared
with :func:`check` in a module of ``netdoctor.checks``. A check may also yield
a :class:`Gap` with source ``check:ID`` for a node where it could not decide,
for example when a firewall walk meets a match module the evaluator does not
read. The report lists such gaps after the snapshot's. The catalogue index in
``netdoctor.checks`` maps each check id to its module, so a run imports only the
modules of the checks it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

from netdoctor.log import get_logger
from netdoctor.model import ClusterSnapshot, Finding, Gap, SchemaError, Severity
from netdoctor.model.record import field, record

logger = get_logger(__name__)

CheckFunction = Callable[[ClusterSnapshot], Iterable[Finding | Gap]]

#: The fixed headings of a check's docstring, in order.
DOC_HEADINGS = ("What it checks", "Why it matters", "Known problems", "Example", "Fix safety")

#: Backends a check can apply to; ``any`` means the check does not depend on the backend.
BACKENDS = ("flannel-udp", "flannel-vxlan", "ovs", "direct-routing", "calico", "any")


class UnknownCheckError(KeyError):
    """A check id that is not in the catalogue."""

    def __str__(self) -> str:
        return f"unknown check id {self.args[0]!r}; run 'netdoctor checks' to list them"


@record
class CheckSpec:
    """A registered check: its stable id, metadata and function."""

    id: str
    title: str
    severity: Severity
    backends: tuple[str, ...]
    function: CheckFunction
    doc: str

    def sections(self) -> dict[str, str]:
        """Split the docstring into its fixed headings; the text before them is the summary."""
        import textwrap

        sections: dict[str, str] = {"Summary": ""}
        current = "Summary"
        lines: list[str] = []
        for line in self.doc.splitlines():
            stripped = line.strip()
            if stripped.rstrip(":") in DOC_HEADINGS and stripped.endswith(":"):
                sections[current] = textwrap.dedent("\n".join(lines)).strip()
                current, lines = stripped.rstrip(":"), []
            else:
                lines.append(line)
        sections[current] = textwrap.dedent("\n".join(lines)).strip()
        return sections


_REGISTRY: dict[str, CheckSpec] = {}


def check(
    id: str, *, title: str, severity: Severity, backends: tuple[str, ...]
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check function under a stable kebab-case id."""

    def register(function: CheckFunction) -> CheckFunction:
        if id in _REGISTRY and _REGISTRY[id].function is not function:
            raise ValueError(f"check id {id!r} is registered twice")
        unknown = set(backends) - set(BACKENDS)
        if unknown:
            raise ValueError(f"check {id!r}: unknown backend(s) {sorted(unknown)}")
        _REGISTRY[id] = CheckSpec(id, title, severity, tuple(backends), function, _clean_docstring(function.__doc__))
        return function

    return register


def _clean_docstring(doc: str | None) -> str:
    """Return a docstring as ``inspect.cleandoc`` does, or "" for None.

    Importing ``inspect`` for this alone would slow down every ``netdoctor check``.
    """
    if doc is None:
        return ""
    lines = doc.expandtabs().split("\n")
    indents = [len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()]
    margin = min(indents, default=0)
    lines = [lines[0].lstrip()] + [line[margin:] for line in lines[1:]]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)


def catalogue() -> dict[str, str]:
    """Return the catalogue index: check id -> module name inside ``netdoctor.checks``."""
    from netdoctor.checks import CATALOGUE

    return dict(CATALOGUE)


def load_checks(ids: Iterable[str] | None = None) -> list[CheckSpec]:
    """Import the modules of the given checks (all when None) and return their specs, sorted by id."""
    index = catalogue()
    wanted = sorted(index) if ids is None else sorted(set(ids))
    for check_id in wanted:
        if check_id not in index:
            raise UnknownCheckError(check_id)
        importlib.import_module(f"netdoctor.checks.{index[check_id]}")
    missing = [check_id for check_id in wanted if check_id not in _REGISTRY]
    if missing:
        raise RuntimeError(f"catalogue lists checks that their modules do not register: {missing}")
    return [_REGISTRY[check_id] for check_id in wanted]


@record
class Report:
    """The result of running checks: sorted findings, and gaps: the snapshot's, then those of checks that failed or could not decide."""

    snapshot: ClusterSnapshot
    checks: tuple[str, ...]
    findings: tuple[Finding, ...]
    gaps: tuple[Gap, ...] = ()
    backends: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def count(self, severity: Severity) -> int:
        """Return how many findings have exactly this severity."""
        return sum(1 for finding in self.findings if finding.severity == severity)

    def worst(self) -> Severity | None:
        """Return the highest severity among the findings, or None when there are none."""
        return max((finding.severity for finding in self.findings), default=None)


def run_checks(snapshot: ClusterSnapshot, specs: Iterable[CheckSpec]) -> Report:
    """Run checks over a snapshot.

    A check that raises is reported as a gap naming the check and the error, and
    the other checks still run: one broken check must not hide the others'
    findings. :class:`SchemaError`, raised when a check reads a snapshot column
    whose text is corrupt (see :func:`netdoctor.model.table.columns_checked_when_read`),
    is an error in the input and ends the run.
    """
    from netdoctor.backends import detect_backends
    from netdoctor.model.table import gc_paused

    findings: list[Finding] = []
    gaps = list(snapshot.gaps)
    ran: list[str] = []
    # Checks build many short-lived objects but few reference cycles, so collections
    # during a run would cost time and free little; the collector runs again afterwards.
    with gc_paused():
        _run_each(snapshot, specs, findings, gaps, ran)
    findings.sort(key=Finding.sort_key)
    try:
        backends = detect_backends(snapshot)
    except SchemaError:
        raise
    except Exception as error:  # the report still lists the findings without the backends
        logger.exception("backend detection failed")
        gaps.append(Gap(None, "backends", f"backend detection failed: {type(error).__name__}: {error}"))
        backends = {}
    return Report(snapshot, tuple(ran), tuple(findings), tuple(gaps), backends)


def _run_each(snapshot: ClusterSnapshot, specs: Iterable[CheckSpec], findings: list[Finding], gaps: list[Gap],
              ran: list[str]) -> None:
    for spec in specs:
        ran.append(spec.id)
        try:
            produced = list(spec.function(snapshot))
        except SchemaError:
            raise
        except Exception as error:  # a defect in one check must not end the run
            logger.exception("check %s failed", spec.id)
            gaps.append(Gap(None, f"check:{spec.id}", f"the check failed: {type(error).__name__}: {error}"))
            continue
        source = f"check:{spec.id}"
        for item in produced:
            if isinstance(item, Gap):
                if item.source != source:
                    raise RuntimeError(f"check {spec.id} produced a gap of {item.source}")
                gaps.append(item)
            elif item.check != spec.id:
                raise RuntimeError(f"check {spec.id} produced a finding for {item.check}")
            else:
                findings.append(item)
