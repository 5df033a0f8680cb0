"""The I/O around the core: the join runner, views, checkpoints, the CSV log,
locks, rejects, the atomic writer.
"""
