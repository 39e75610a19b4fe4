"""TUI responsiveness on a 1,000-node snapshot over the same on a 3-node snapshot.

Each session opens the real :class:`~netdoctor.tui.app.NetdoctorApp` on a
snapshot file with ``App.run_test()`` (the headless driver, 160x48 cells) and
records the time of every frame that the screen's compositor hands to the
driver. Timings, all measured from just before the app is created:

* **first frame**: the first frame of the main screen, with the header, the
  nodes pane, the empty findings table and the "loading" status line. The
  snapshot is read and checked in a thread worker that starts after this frame.
* **nodes shown** (in the notes): the first frame whose nodes pane lists the
  snapshot's nodes, drawn when the worker has read the file and before the checks
  finish.
* **findings shown**: the first frame whose findings table has rows, so reading
  the file and running every check are included.
* **filter keystroke**: after the findings are shown, ``/`` opens the filter and
  each character of a filter text is pressed. The latency of one keystroke runs
  from sending the key to the first frame whose findings table applies the new
  filter text (the table's title names the filter it applies). The figure is
  the median over all keystrokes of all sessions.

The headless driver discards the frame after the compositor has rendered every
visible line into strips, so a frame's time includes all widget rendering and
leaves out only writing the escape codes to a terminal.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import Figure, Timing
from textual.css.query import NoMatches

from netdoctor import synthetic
from netdoctor.model.serialize import dumps_snapshot
from netdoctor.tui.app import NetdoctorApp
from netdoctor.tui.findings import FindingsTable
from netdoctor.tui.nodes import NodesTree
from netdoctor.tui.source import SnapshotSource

#: The cluster both snapshots are generated as: Calico, with a stale blackhole route
#: on one node (a blackhole-route and a route-missing finding) and IP forwarding off
#: on another (an ip-forward-disabled finding), so the findings table has three rows.
BACKEND = "calico"
FAULTS = ("stale-blackhole", "ip-forward-off")

#: Node counts: the large snapshot and the small one it is divided by.
LARGE_NODES = 1000
SMALL_NODES = 3
#: The large size of ``--quick``, small enough for the test suite's smoke test.
QUICK_LARGE_NODES = 8

#: Terminal size of every session, in cells.
TERMINAL_SIZE = (160, 48)

#: Typed after ``/``; every character is one measured keystroke.
FILTER_TEXT = "blackhole"

#: Seconds a session waits for the findings before it gives up.
LOAD_TIMEOUT = 1800.0
#: Seconds a keystroke waits for its frame before it gives up.
FRAME_TIMEOUT = 60.0


@dataclass
class Frame:
    """The state of the widgets in one frame, recorded when the compositor handed it to the driver."""

    time: float
    tree_lines: int
    table_rows: int
    #: The filter that the findings table applies, as its title names it.
    table_filter: str


@dataclass
class Session:
    """The timings of one app session, in seconds from just before the app was created."""

    first_frame: float
    nodes_shown: float
    findings_shown: float
    keystrokes: list[float] = field(default_factory=list)


class TimedApp(NetdoctorApp):
    """The app with a record of every frame of its main screen.

    It overrides ``App._display``, the private method that receives each
    compositor update (Textual 8), because Textual has no public frame hook.
    """

    def __init__(self, source: SnapshotSource) -> None:
        super().__init__(source)
        #: Every frame of the main screen, oldest first.
        self.frames: list[Frame] = []

    def _display(self, screen: Any, renderable: Any) -> None:
        if renderable is not None and screen is self.screen:
            try:
                tree = self.query_one(NodesTree)
                table = self.query_one(FindingsTable)
            except NoMatches:
                # The first screen of the app (before compose) and a closing app have no such widgets.
                pass
            else:
                applied = str(table.border_title or "").removeprefix("filter: ")
                self.frames.append(Frame(time.perf_counter(), len(tree.root.children), table.row_count, applied))
        super()._display(screen, renderable)


async def _frame_after(app: TimedApp, started: float, condition: Any, timeout: float) -> Frame:
    """Wait for the first frame after ``started`` that meets ``condition`` and return it."""
    deadline = time.perf_counter() + timeout
    while True:
        for frame in app.frames:
            if frame.time >= started and condition(frame):
                return frame
        if time.perf_counter() > deadline:
            raise TimeoutError(f"no frame met the condition within {timeout:g} s; last frame: {app.frames[-1:]}")
        await asyncio.sleep(0.001)


async def _session(path: Path, nodes: int) -> Session:
    started = time.perf_counter()
    app = TimedApp(SnapshotSource(snapshot=path))
    async with app.run_test(size=TERMINAL_SIZE) as pilot:
        first = await _frame_after(app, started, lambda frame: True, LOAD_TIMEOUT)
        listed = await _frame_after(app, started, lambda frame: frame.tree_lines == nodes, LOAD_TIMEOUT)
        shown = await _frame_after(app, started, lambda frame: frame.table_rows > 0, LOAD_TIMEOUT)
        session = Session(first.time - started, listed.time - started, shown.time - started)
        await app.workers.wait_for_complete()
        await pilot.pause()

        await pilot.press("slash")
        await pilot.pause()
        for length in range(1, len(FILTER_TEXT) + 1):
            typed = FILTER_TEXT[:length]
            pressed = time.perf_counter()
            await pilot.press(FILTER_TEXT[length - 1])
            frame = await _frame_after(app, pressed, lambda frame, typed=typed: frame.table_filter == typed,
                                       FRAME_TIMEOUT)
            session.keystrokes.append(frame.time - pressed)
        app.exit()
    return session


def _write_snapshot(directory: Path, nodes: int) -> tuple[Path, dict[str, Any]]:
    snapshot = synthetic.generate(BACKEND, nodes, FAULTS)
    text = dumps_snapshot(snapshot)
    path = directory / f"{BACKEND}-{nodes}.json"
    path.write_text(text, encoding="utf-8")
    routes = sum(len(node.routes or ()) for node in snapshot.nodes)
    described = {"backend": BACKEND, "nodes": nodes, "faults": list(FAULTS), "routes": routes,
                 "file_mib": round(len(text.encode()) / 2**20, 1)}
    return path, described


def _timing(label: str, runs: list[float]) -> Timing:
    return Timing(label, statistics.median(runs), runs)


def _measure(path: Path, nodes: int, repeat: int) -> list[Session]:
    sessions = []
    for _ in range(repeat):
        # The previous session's app and snapshot are freed here, not during the next first frame.
        gc.collect()
        sessions.append(asyncio.run(_session(path, nodes)))
    return sessions


def figures(quick: bool) -> list[Figure]:
    """Measure the first frame, the findings and the filter keystroke at both sizes."""
    large = QUICK_LARGE_NODES if quick else LARGE_NODES
    repeat = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="nd-bench-tui-") as directory:
        small_path, small_described = _write_snapshot(Path(directory), SMALL_NODES)
        large_path, large_described = _write_snapshot(Path(directory), large)
        # One unmeasured session first, so that neither size pays for importing and
        # compiling the checks and the widgets.
        _measure(small_path, SMALL_NODES, 1)
        small = _measure(small_path, SMALL_NODES, repeat)
        big = _measure(large_path, large, repeat)

    notes = {
        "terminal": f"{TERMINAL_SIZE[0]}x{TERMINAL_SIZE[1]}",
        "sessions": repeat,
        "snapshots": [small_described, large_described],
        "nodes_shown_s": {
            str(SMALL_NODES): statistics.median(session.nodes_shown for session in small),
            str(large): statistics.median(session.nodes_shown for session in big),
        },
        "filter_text": FILTER_TEXT,
    }
    label_large, label_small = f"{large} nodes", f"{SMALL_NODES} nodes"
    return [
        Figure(
            f"TUI first frame, {large} over {SMALL_NODES} nodes",
            _timing(label_large, [session.first_frame for session in big]),
            _timing(label_small, [session.first_frame for session in small]),
            target=2.0,
            notes=notes,
        ),
        Figure(
            f"TUI findings shown, {large} over {SMALL_NODES} nodes",
            _timing(label_large, [session.findings_shown for session in big]),
            _timing(label_small, [session.findings_shown for session in small]),
            target=None,
            notes=notes,
        ),
        Figure(
            f"TUI filter keystroke, {large} over {SMALL_NODES} nodes",
            _timing(label_large, [latency for session in big for latency in session.keystrokes]),
            _timing(label_small, [latency for session in small for latency in session.keystrokes]),
            target=2.0,
            notes=notes,
        ),
    ]
