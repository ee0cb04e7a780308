"""Taskhub's domain: entities, rules, ports and use cases. Standard library only."""
