"""The four nnmon processors (features, model, metric, plot) and the CLI."""
