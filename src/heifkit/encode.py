"""Encode orchestration (placeholder until the write path lands)."""
