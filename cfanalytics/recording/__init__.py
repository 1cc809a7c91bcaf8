"""Recording: cassettes, the journal, record and replay transports, the recorder, event logs."""
