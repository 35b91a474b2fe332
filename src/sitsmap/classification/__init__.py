"""Streaming classification: class, confidence and probability maps by window."""
