"""Rebuilding views from the streams' history."""
