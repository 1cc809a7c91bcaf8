"""The shareable HTML report of a recorded rollout: one self-contained file.

``cfanalytics report SOURCE -o report.html`` or :func:`write_report`. Images are inline,
nothing is fetched to view it, and the same source always gives the same bytes. The report
package owns every rendering of results: the formatters (``NA``, :func:`duration`,
:func:`escape`, :func:`png`, :func:`table`, :func:`when`) are public so the widgets show a
value exactly as the report does. :func:`postmortem` gathers a postmortem's tables and
writes its Markdown draft.
"""

from ._data import ReportData, analyse
from ._html import NA, duration, escape, png, table, when
from ._postmortem import Postmortem, postmortem
from ._provenance import Provenance, sha256_of
from ._write import build_report, write_report

__all__ = [
    "NA",
    "Postmortem",
    "Provenance",
    "ReportData",
    "analyse",
    "build_report",
    "duration",
    "escape",
    "png",
    "postmortem",
    "sha256_of",
    "table",
    "when",
    "write_report",
]
