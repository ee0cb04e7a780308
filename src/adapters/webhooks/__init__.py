"""Outbound HTTP: webhook deliveries under the egress rules."""
