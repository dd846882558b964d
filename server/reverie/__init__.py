"""Reverie: an MCP server that gives AI agents a memory that dreams."""

__version__ = "0.1.0"
