"""Outbound domain events (webhooks and MCP will come here; for now a structured log line)."""
