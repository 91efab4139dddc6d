"""burnbox for AI agents: an MCP server over burnbox's HTTP API (docs/agents.md)."""
