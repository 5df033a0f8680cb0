"""Reading streams: bounded per-stream queues, merged oldest first, resumable from stored offsets."""
