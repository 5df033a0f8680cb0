"""The `nnmon` command line."""
