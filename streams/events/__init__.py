"""nnmon's events: their types, ids, codec, templates, and reading a chunk of them at once."""
