"""Interactive widgets for Jupyter: queue jobs, watch a rollout live, scrub through a recording.

Each is a thin ipywidgets view over a plain class that holds the logic and is tested
without Jupyter: :class:`QueuePanel` over :class:`~cfanalytics.live.QueueController`,
:class:`LiveMonitor` over :class:`~cfanalytics.live.Monitor`, :class:`ReplayScrubber`
over :class:`~cfanalytics.analysis.FleetTimeline`. Work runs as asyncio tasks on the
kernel's event loop (never threads); an error in a callback is shown in the widget.

    live = cfa.LiveSession.open("simulator")
    panel = QueuePanel(live.client, live.asid)
    monitor = LiveMonitor(live.runner())
    panel.on_queued(monitor.follow)
"""

from ._monitor import LiveMonitor
from ._queue import QueuePanel
from ._scrubber import ReplayScrubber

__all__ = ["LiveMonitor", "QueuePanel", "ReplayScrubber"]
