"""Running a process: configuration, logging and signals, reconnection with
backoff, progress lines, the throttle.
"""
