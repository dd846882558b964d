"""The dream review screen, an MCP App: one self-contained HTML page hosts render for propose_dream.

Hosts that speak MCP Apps fetch `REVIEW_URI` (served as `text/html;profile=mcp-app`), hand the
page the `propose_dream` result, and proxy its `apply_dream` call back to this server; clients
without Apps keep reading the report text. The page ships as package data (`ui/review.html`)
and must stay self-contained: hosts block every outside origin.
"""

from __future__ import annotations

from importlib import resources

REVIEW_URI = "ui://reverie/review.html"


def review_html() -> str:
    """The review page, as the host renders it."""
    return (resources.files("reverie") / "ui" / "review.html").read_text(encoding="utf-8")
