#!/bin/sh
# Reverie in Claude Code: the MCP server, plus two hooks that log every session when it
# ends and load memory when one starts.
#
# 1. Run this script: it registers `reverie serve` with Claude Code, then asks Claude Code
#    for the server's entry, which fails unless the server was added.
# 2. Merge the "hooks" of settings.json (next to this file) into ~/.claude/settings.json
#    (every project) or .claude/settings.json (one project). Run check_hooks.py to see
#    both hook commands at work against a temporary database.
#
# The server and the hooks must share a database and an agent id. Both default to the
# user data dir and, with the -e below and the hooks' own default, to the agent
# "claude-code". If you point the server elsewhere (-e REVERIE_DB=...), add the same
# `--db PATH` to both hook commands. If `reverie` lives in a virtual environment that is
# not on Claude Code's PATH, use its absolute path (`which reverie`) here and in the hooks.
set -eu

command -v claude >/dev/null 2>&1 || { echo "mcp-add.sh: the claude CLI is not on PATH" >&2; exit 1; }
command -v reverie >/dev/null 2>&1 || { echo "mcp-add.sh: reverie is not on PATH (pip install -e .)" >&2; exit 1; }

claude mcp add reverie -e REVERIE_AGENT_ID=claude-code -- reverie serve
claude mcp get reverie
