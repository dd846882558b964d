"""The floor: an MCP server with one tool that does nothing, spawned like `reverie serve`.

Its round trip over stdio is what the transport and the SDK cost (JSON-RPC framing, pipes,
two event loops, result validation) before any handler runs; `read_memory` is judged
against it. Run as a script: `python bench/perf/noop_server.py` (stdio), or with
`--http PORT` to serve the same tool over streamable HTTP at `http://127.0.0.1:PORT/mcp`
under uvicorn, as `reverie serve --http` does (no auth, no request log: the SDK alone).
"""

import sys

from mcp.server import MCPServer

server = MCPServer("noop")


@server.tool()
def noop() -> str:
    """Return at once."""
    return "ok"


def serve_http(port: int) -> None:
    import uvicorn

    app = server.streamable_http_app(host="127.0.0.1")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--http"]:
        serve_http(int(sys.argv[2]))
    else:
        server.run()
