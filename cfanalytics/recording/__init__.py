"""Recording: everything between the client and the events table.

Cassettes (vcrpy format, written once, scrubbed of secrets), the crash-safe journal, the
record, replay and resume transports, the :class:`Recorder` that turns every response into
event rows, event logs (JSONL while a run lasts, Parquet after), the :class:`RolloutRunner`
that queues and polls, the runs (:func:`record`, :func:`replay`, :func:`resume` and their
async forms), the sources any analysis reads (:func:`load_source`,
:func:`events_from_cassette`), the :class:`HistoryStore` that keeps every recording in one
Parquet dataset, the synthetic histories for scale work (:func:`synthesize`), the shipped
samples and the secret scanner.
"""

from ._cassette import FILTERED, Cassette, CassetteWriter, Interaction, load_cassette
from ._eventcsv import CSV_TIME_FORMAT
from ._eventlog import EXPORT_SUFFIXES, EventLog, load_events, write_events
from ._history import HistoryAdded, HistoryProgress, HistoryStore, is_store
from ._journal import journal_path
from ._recorder import AsyncRecordingTransport, Recorder, RecordingTransport, new_run_id
from ._replay import (
    FAILURES_KEY,
    RecordedFailure,
    ReplayTransport,
    RequestKey,
    ResumeTransport,
    in_recorded_order,
    replay_source,
    request_key,
)
from ._runner import QUEUEABLE, RolloutProgress, RolloutRunner, no_sleep
from ._runs import (
    RecordedRun,
    Recording,
    RunPlan,
    arecord,
    areplay,
    aresume,
    record,
    replay,
    replay_client,
    resume,
)
from ._samples import HISTORY, SAMPLES, Sample, make_cassette, make_history, record_sample
from ._scan import MIN_SECRET_LENGTH, SCANNED_SUFFIXES, SKIPPED_DIRS, Finding, scan_paths
from ._sources import (
    CASSETTE_SUFFIXES,
    SourceKind,
    cassettes_in,
    events_from_cassette,
    load_source,
    source_kind,
)
from ._store_catalog import CATALOG_COLUMNS
from ._synth import BATCH_ROWS, MANY_JOBS, Synthesized, synthesize, synthetic_events

__all__ = [
    "BATCH_ROWS",
    "CASSETTE_SUFFIXES",
    "CATALOG_COLUMNS",
    "CSV_TIME_FORMAT",
    "EXPORT_SUFFIXES",
    "FAILURES_KEY",
    "FILTERED",
    "HISTORY",
    "MANY_JOBS",
    "MIN_SECRET_LENGTH",
    "QUEUEABLE",
    "SAMPLES",
    "SCANNED_SUFFIXES",
    "SKIPPED_DIRS",
    "AsyncRecordingTransport",
    "Cassette",
    "CassetteWriter",
    "EventLog",
    "Finding",
    "HistoryAdded",
    "HistoryProgress",
    "HistoryStore",
    "Interaction",
    "RecordedFailure",
    "RecordedRun",
    "Recorder",
    "Recording",
    "RecordingTransport",
    "ReplayTransport",
    "RequestKey",
    "ResumeTransport",
    "RolloutProgress",
    "RolloutRunner",
    "RunPlan",
    "Sample",
    "SourceKind",
    "Synthesized",
    "arecord",
    "areplay",
    "aresume",
    "cassettes_in",
    "events_from_cassette",
    "in_recorded_order",
    "is_store",
    "journal_path",
    "load_cassette",
    "load_events",
    "load_source",
    "make_cassette",
    "make_history",
    "new_run_id",
    "no_sleep",
    "record",
    "record_sample",
    "replay",
    "replay_client",
    "replay_source",
    "request_key",
    "resume",
    "scan_paths",
    "source_kind",
    "synthesize",
    "synthetic_events",
    "write_events",
]
