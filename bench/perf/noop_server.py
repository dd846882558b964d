"""The floor: an MCP server with one tool that does nothing, spawned like `reverie serve`.

Its round trip over stdio is what the transport and the SDK cost (JSON-RPC framing, pipes,
two event loops, result validation) before any handler runs; `read_memory` is judged
against it. Run as a script: `python bench/perf/noop_server.py`.
"""

from mcp.server import MCPServer

server = MCPServer("noop")


@server.tool()
def noop() -> str:
    """Return at once."""
    return "ok"


if __name__ == "__main__":
    server.run()
