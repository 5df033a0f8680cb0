"""The `nnmon` command line, and the supervisor `nnmon up` runs the
processors under."""
