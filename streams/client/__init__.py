"""The broker client: connections, the chunk consumer, the confirmed publisher,
topology, the management API. The only room that reaches past rstream's
public API (rstream_private).
"""
