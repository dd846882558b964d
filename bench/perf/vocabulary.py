"""The words the synthetic data is made of, drawn from one seeded `random.Random`.

A few hundred common domain words (deploy, cache, staging …), component names built from
them (`billing-api`), versions and paths, and thousands of rare pseudo-words (team and
project code names) drawn with a Zipf-like skew — so FTS5 sees both very common and very
rare terms, as in a real agent memory.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

DOMAIN = """deploy config latency timeout cache schema migration release rollback token retry queue index
backup replica cluster endpoint webhook cron certificate build test lint branch review merge ticket customer
invoice refund discount plan tier staging production database postgres redis kafka docker kubernetes terraform
python typescript pytest eslint poetry npm gradle nginx sentry grafana prometheus alert oncall pager runbook
incident outage quota limit shard partition vacuum lock deadlock timezone locale encoding csv json yaml client
server worker scheduler gateway proxy dns tls oauth sso login session cookie header payload batch stream export
import report dashboard metric trace span audit permission role admin tenant region bucket storage upload
download thumbnail image email notification template translation fixture mock coverage flaky snapshot feature
flag experiment cohort funnel churn signup onboarding password reset webhook retry backoff jitter idempotency
checksum compression pagination cursor offset sort filter facet ranking embedding vector""".split()
HEADS = ("billing auth search ingest payments notify report export catalog ledger gateway scheduler profile "
         "inventory checkout analytics").split()
TAILS = "api worker service db cache queue ui cli cron proxy".split()
TECH = {"PostgreSQL": ["13", "14", "15", "16"], "Redis": ["6.2", "7.0", "7.2"], "Python": ["3.10", "3.11", "3.12"],
        "Node": ["18", "20", "22"], "Kafka": ["3.5", "3.7"], "nginx": ["1.24", "1.25"], "Django": ["4.2", "5.0"]}
ENVS = "staging production dev qa eu-west us-east".split()
FIELDS = "owner|oncall channel|deploy window|base image|region|alert threshold|retention".split("|")
SYLLABLES = "ka lo mi ra ven tor sil qua dex ni po zen bar fi gul hem jo lux mor nar os pel ri sta tu vy wex yo zu cor".split()
TOOLS = ("read_file edit_file run_tests grep bash git_commit git_push deploy http_get sql_query open_ticket send_email "
         "search_docs lint build").split()


@dataclass
class Vocabulary:
    """The words everything is made of; built once per seed."""

    rng: random.Random
    codenames: list[str] = field(default_factory=list)
    _weights: list[float] = field(default_factory=list)

    @classmethod
    def build(cls, rng: random.Random, size: int = 6_000) -> Vocabulary:
        made = {"".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3, 3)))) for _ in range(size * 2)}
        words = sorted(made)[: size * 2]
        rng.shuffle(words)
        words = words[:size]
        return cls(rng, words, list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(words)))))

    def codename(self) -> str:
        return self.rng.choices(self.codenames, cum_weights=self._weights)[0]

    def component(self) -> str:
        return f"{self.rng.choice(HEADS)}-{self.rng.choice(TAILS)}"

    def domain(self, n: int = 1) -> str:
        return " ".join(self.rng.choice(DOMAIN) for _ in range(n))

    def tech(self) -> str:
        name = self.rng.choice(list(TECH))
        return f"{name} {self.rng.choice(TECH[name])}"

    def path(self) -> str:
        extension = self.rng.choice(["py", "ts", "yaml", "sql"])
        return f"{self.rng.choice(HEADS)}/{self.codename()}/{self.rng.choice(DOMAIN)}.{extension}"

    def sentence(self) -> str:
        """Filler: a plausible-looking context sentence mixing common and rare words."""
        r = self.rng
        return (f"{self.domain().capitalize()} {self.domain(r.randint(1, 4))} for {self.codename()} "
                f"{self.domain(r.randint(0, 3))} {r.choice(['because', 'when', 'after', 'unless', 'so'])} "
                f"{self.domain(r.randint(2, 5))} {r.randint(1, 500)}.").replace("  ", " ")
