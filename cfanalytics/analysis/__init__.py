"""Analysis: pure functions over the events table."""
