"""The event log layer: connection settings, stream topology, the event codec,
and producers and consumers that track offsets on the broker."""
