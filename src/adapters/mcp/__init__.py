"""MCP (Model Context Protocol) for AI assistants: a Streamable HTTP endpoint whose tools are thin
adapters over the domain's use cases, behind the same bearer credentials, scopes and rate limits
as the HTTP API."""
