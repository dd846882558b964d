"""Secrets in the forms people paste, logged through a real MCP client: none may reach the file.

Each variant is a secret in a frame (a command line, a header, a config file, a URL). It
is logged as a turn, a note and a title; then every file beside the database (the
write-ahead log included) is searched for the secret's bytes. Secrets are assembled at
load time (`_j`), so this file holds no contiguous token for a scanner to flag.
`python tests/test_redaction_forms.py` prints how many variants leave bytes behind.
"""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
from mcp import Client
from reverie.config import Settings
from reverie.mcp_server import build_server

ZWSP = "\u200b"


def _j(*parts: str) -> str:
    return "".join(parts)


@dataclass(frozen=True)
class Variant:
    id: str
    frame: str           # how it is pasted; {secret} marks the spot
    secret: str
    needles: tuple[str, ...] = field(default=())  # what must not be stored; default: the secret

    @property
    def text(self) -> str:
        return self.frame.format(secret=self.secret)

    def searched(self) -> tuple[str, ...]:
        return self.needles or (self.secret.strip("'\""),)


_PGP = _j("-----BEGIN PGP ", "PRIVATE KEY BLOCK-----\n\nlQOYBGXk", "Zq9vP3mN8sLt2Rw1QxYz\n",
          "aBcDeFgH1234567890PgPbOdY\n=Xk9q\n-----END PGP PRIVATE KEY BLOCK-----")
_OPENSSH = _j("-----BEGIN OPENSSH ", "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA", "Bm9uZQAAAARub25l\n",
              "AAAAAAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5OpEnSsH\n-----END OPENSSH PRIVATE KEY-----")
_ANTHROPIC = _j("sk-", "ant-api03-", "Xq7Lm2Pz9Rt4" * 6)
_GITHUB = _j("gh", "p_", "Zw8Kq2Lm9Xv4" * 3)
_JWT = _j("ey", "JhbGciOiJIUzI1NiJ9.", "eyJzdWIiOiJhbGljZSJ9.", "c2lnbmF0dXJlX3ZhbHVlX2hlcmU")

VARIANTS = [
    # the forms the review found leaking
    Variant("pgpassword-env", "PGPASSWORD={secret} psql -h db.internal -U app", _j("Pg", "S3cret!pass")),
    Variant("password-flag-equals", "mysqldump --password={secret} shop > shop.sql", _j("Dump", "Pa55word")),
    Variant("password-flag-space", "psql-admin --password {secret} --host db", _j("Spac", "edPa55!")),
    Variant("mysql-glued-p", "mysql -uroot -p{secret} shop", _j("MyS", "qlR00tPw")),
    Variant("sshpass", "sshpass -p '{secret}' ssh deploy@web1", _j("Ssh", "!Pass123")),
    Variant("docker-login-p", "docker login -u bob -p {secret} registry.example.com", _j("D0ck", "erHubPw9")),
    Variant("authorization-basic", "curl -H 'Authorization: Basic {secret}' https://api.example.com",
            _j("YWxpY2U6", "c3VwZXJzZWNyZXQxMjM=")),
    Variant("cookie-sessionid", "Cookie: sessionid={secret}; csrftoken=abc", _j("8f14e45f", "ceea167a5a36dedd4bea2543")),
    Variant("slack-webhook", "post alerts to {secret}",
            _j("https://hooks.", "slack.com/services/T0A1B2C3D/B4E5F6G7H/", "q8W9e0R1t2Y3u4I5o6P7a8S9")),
    Variant("pgp-private-key", "{secret}", _PGP, ("lQOYBGXkZq9vP3mN8sLt2Rw1QxYz", "aBcDeFgH1234567890PgPbOdY")),
    Variant("yaml-pass", "smtp:\n  user: mailer\n  pass: {secret}\n", _j("Zq9!", "vLm2pX")),
    Variant("zero-width-in-key", "use {secret} for the batch jobs", _ANTHROPIC[:20] + ZWSP + _ANTHROPIC[20:],
            (_ANTHROPIC[:20], _ANTHROPIC[20:], _ANTHROPIC)),
    # the same families, other spellings
    Variant("url-credentials", "git clone https://alice:{secret}@git.example.com/repo.git", _j("Url", "!Pass99x")),
    Variant("netrc-line", "machine api.example.com login alice password {secret}", _j("Netrc", "Pass42x")),
    Variant("aws-secret-key", "aws_secret_access_key = {secret}", _j("wJalrXUtnFEMI/K7MDENG/", "bPxRfiCYEXAMPLEKEY")),
    Variant("aws-secret-key-json", '{{"SecretAccessKey": "{secret}"}}', _j("Zk8pQ2vL9mN3", "xR7tY1wE5uI0oP4aS6dF8gH2/+Ab")),
    Variant("github-token", "gh auth login --with-token <<< {secret}", _j("gh", "p_", "R4nD0mT0k3n9" * 3)),
    Variant("gitlab-token", "CI_JOB: {secret}", _j("gl", "pat-", "Kp3Lm9Nq2R" * 2)),
    Variant("stripe-key", "Stripe.api_key = '{secret}'", _j("sk", "_live_", "51HqLy9Wd" * 3)),
    Variant("google-api-key", "maps?key={secret}&v=3", _j("AI", "za", "SyD4kL9mN2pQ7rS1tU5vW8xY3zA6bC0dE9f")),
    Variant("openai-key", "OPENAI_API_KEY={secret}", _j("sk-", "proj-", "pR8vN2wQ" * 6)),
    Variant("anthropic-key", "the key is {secret}", _ANTHROPIC),
    Variant("jwt", "the cookie held {secret}", _JWT),
    Variant("openssh-private-key", "{secret}", _OPENSSH, ("b3BlbnNzaC1rZXktdjEAAAAA", "AAAAC3NzaC1lZDI1NTE5OpEnSsH")),
    Variant("export-token", "export DEPLOY_TOKEN={secret}", _j("f00Bar", "Baz123456")),
    Variant("json-password", '{{"user": "app", "password": "{secret}"}}', _j("Json", "Pass#123")),
    Variant("yaml-password", "database:\n  password: {secret}\n", _j("Yaml", "Pass#123")),
    Variant("curl-user", "curl -u alice:{secret} https://api.example.com", _j("Curl", "Pass123")),
    Variant("redis-url", "REDIS_URL=redis://:{secret}@cache:6379/0", _j("Redis", "Pass123")),
    Variant("env-file", "DEBUG=false\nDATABASE_PASSWORD={secret}\nSECRET_KEY=django-insecure-k3y\n",
            _j("EnvFile", "Pass123")),
    Variant("env-secret-key", "SECRET_KEY={secret}", _j("django-", "insecure-9x!k3y")),
    Variant("mysql-pwd-env", "MYSQL_PWD={secret} mysql -u root", _j("Mysql", "PwdEnv1")),
    Variant("proxy-authorization", "Proxy-Authorization: Basic {secret}", _j("Ym9iOn", "Byb3h5cGFzczE=")),
    Variant("authorization-token", "Authorization: Token {secret}", _j("9944b09199c62bcf", "9418ad846dd0e4bbdfc6ee4b")),
    Variant("set-cookie", "Set-Cookie: session={secret}; Path=/; HttpOnly", _j("s%3A", "Xk29fPq81LmZ")),
    Variant("api-token-flag", "vault login --token {secret}", _j("hvs.", "CAESIJx9Lq2m")),
    Variant("discord-webhook", "{secret}", _j("https://discord.com/api/", "webhooks/123456789012345678/",
                                              "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7")),
    Variant("soft-hyphen-in-token", "pushed with {secret} today", _GITHUB[:12] + "\u00ad" + _GITHUB[12:],
            (_GITHUB[:12], _GITHUB[12:], _GITHUB)),
]


def files_holding(directory: Path, needles: tuple[str, ...]) -> list[str]:
    return [f"{path.name}: {needle[:10]}…" for path in sorted(directory.rglob("*")) if path.is_file()
            for needle in needles if needle.encode() in path.read_bytes()]


async def leaks(directory: Path, variant: Variant) -> list[str]:
    """Log `variant` as a turn, a note, a title and an outcome summary; where its bytes are found."""
    settings = Settings(db_path=directory / "memory.db", agent_id="ops")
    async with Client(build_server(settings), mode="legacy") as client:
        result = await client.call_tool("log_session", {
            "transcript": [{"role": "user", "content": variant.text},
                           {"role": "tool", "content": variant.text, "tool_name": "shell"}],
            "notes": [variant.text], "title": variant.text[:200],
            "outcome": "success", "outcome_summary": variant.text})
        assert not result.is_error, result
    with sqlite3.connect(settings.db_path) as connection:  # move the write-ahead log into the file
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return files_holding(directory, variant.searched())


def test_the_table_covers_at_least_31_variants_with_distinct_ids():
    assert len(VARIANTS) >= 31 and len({v.id for v in VARIANTS}) == len(VARIANTS)


@pytest.mark.anyio
@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
async def test_a_secret_in_this_form_leaves_no_bytes_in_the_database(tmp_path, variant):
    assert await leaks(tmp_path, variant) == []


async def _count(root: Path) -> list[str]:
    leaking = []
    for n, variant in enumerate(VARIANTS):
        (root / str(n)).mkdir()
        if await leaks(root / str(n), variant):
            leaking.append(variant.id)
    return leaking


if __name__ == "__main__":  # the figure for docs/safety.md: python tests/test_redaction_forms.py
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        leaking = anyio.run(_count, Path(scratch))
    print(f"{len(VARIANTS) - len(leaking)} of {len(VARIANTS)} variants left no secret bytes; leaking: {leaking}")
    sys.exit(0)


# --- ids and echoed text ---------------------------------------------------------------------


def _text(result) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


@pytest.mark.anyio
@pytest.mark.parametrize("field_name", ["session_id", "agent_id"])
async def test_an_id_holding_a_secret_is_refused_and_neither_stored_nor_echoed(tmp_path, field_name):
    settings = Settings(db_path=tmp_path / "memory.db", agent_id="ops")
    secret = _ANTHROPIC
    async with Client(build_server(settings), mode="legacy") as client:
        result = await client.call_tool("log_session", {
            "transcript": [{"role": "user", "content": "hello"}], field_name: f"ses-{secret}"})

    assert result.is_error
    assert f"The {field_name} holds what looks like a secret" in _text(result)
    assert secret not in _text(result)
    assert files_holding(tmp_path, (secret,)) == []


@pytest.mark.anyio
async def test_an_error_that_quotes_a_scope_holding_a_secret_quotes_it_redacted(tmp_path):
    settings = Settings(db_path=tmp_path / "memory.db", agent_id="ops")
    async with Client(build_server(settings), mode="legacy") as client:
        result = await client.call_tool("propose_dream", {"engine": "heuristic", "scope": f"vault {_GITHUB}"})

    assert result.is_error
    assert _GITHUB not in _text(result) and "[REDACTED:github_token]" in _text(result)
