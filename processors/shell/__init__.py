"""The I/O around the core: the join runner, views, checkpoints, the CSV log,
locks, rejects, counts files, a model file, the atomic writer.
"""
