"""Live control: sessions, queueing and monitoring, without widgets."""
