"""Running processes: configuration, logging and signals, reconnection, the
supervisor of `nnmon up`, progress lines, counts, the throttle.
"""
