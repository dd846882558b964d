"""Other tools' memory formats, read into Reverie's export document and written from its memory.

Each module speaks one format and does no database work: an importer turns files into a
`reverie-export` document (`document.build`), which `service.transfer.import_` checks,
redacts, flags and stages as one pending proposal like any other import; an exporter
turns curated entries into file texts, which `written.write_owned` puts on disk without
ever touching a file Reverie did not write.

- `claude_code`: Claude Code's auto memory (`MEMORY.md` and topic files).
- `server_memory`: the reference MCP memory server's JSONL knowledge graph.
- `anthropic_store`: Managed Agents memory stores (path-addressed text documents).
"""
