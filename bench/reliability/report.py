"""The reliability figures as one markdown table, or as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.reliability.concurrency import WriteFigures
from bench.reliability.kill import SPREAD, KillFigures
from bench.reliability.race import RaceFigures, StaleLock


@dataclass
class Figures:
    writes: list[WriteFigures] = field(default_factory=list)
    kills: list[KillFigures] = field(default_factory=list)
    races: RaceFigures | None = None
    stale_lock: StaleLock | None = None
    notes: list[str] = field(default_factory=list)  # e.g. why a transport was skipped

    @property
    def ok(self) -> bool:
        """Every figure as it must be: nothing lost, nothing half-applied, no race won twice."""
        return (all(w.exact and w.reads_missing_own_write == 0 for w in self.writes)
                and all(k.count("neither") == 0 and k.unhealthy == 0 for k in self.kills)
                and (self.races is None or (self.races.proceeded_overlapping == 0 and self.races.applied_both == 0
                                            and self.races.memory_exact == len(self.races.rounds)
                                            and self.races.unhealthy == 0))
                and (self.stale_lock is None or self.stale_lock.recovered))


def markdown(figures: Figures) -> str:
    rows = [row for w in figures.writes for row in _write_rows(w)]
    rows += [row for k in figures.kills for row in _kill_rows(k)]
    if figures.races:
        rows += _race_rows(figures.races)
    if figures.stale_lock:
        rows += _stale_rows(figures.stale_lock)
    lines = ["| scenario | figure | result |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    if figures.notes:
        lines += [""] + [f"- {note}" for note in figures.notes]
    if not figures.ok:
        lines += ["", "**Some figures are not as they must be; see the rows above.**"]
    return "\n".join(lines)


ON = {"sqlite": "one SQLite file", "postgresql": "one PostgreSQL database"}


def _write_rows(w: WriteFigures) -> list[tuple[str, str, str]]:
    scenario = f"{w.servers} `reverie serve` ({w.transport}) on {ON[w.backend]}, {w.clients} clients"
    rate = w.attempted / w.seconds if w.seconds else 0
    return [
        (scenario, "log_session writes attempted / acknowledged / present afterwards",
         f"{w.attempted:,} / {w.acknowledged:,} / {w.present:,}"),
        ("", "errors reaching a client (of which \"database is locked\")", f"{len(w.errors)} ({w.locked})"),
        ("", "read_memory calls / missing the client's own last write", f"{w.reads:,} / {w.reads_missing_own_write}"),
        ("", "stored rows differing from what clients were told", str(len(w.problems))),
        ("", "time", f"{w.seconds:.1f} s ({rate:,.0f} writes/s)"),
    ]


def _kill_rows(k: KillFigures) -> list[tuple[str, str, str]]:
    process = "`reverie serve` (MCP over stdio)" if k.worker == "server" else "a process calling the service"
    return [
        (f"kill -9 of {process} during apply_dream ({k.ops} ops, {ON[k.backend]})",
         f"trials (delays over 0–{SPREAD} × the {k.apply_seconds * 1000:.0f} ms apply)", str(len(k.trials))),
        ("", "memory exactly before / exactly after / anything else",
         f"{k.count('before')} / {k.count('after')} / {k.count('neither')}"),
        ("", "databases failing `reverie doctor` afterwards", str(k.unhealthy)),
    ]


def _race_rows(r: RaceFigures) -> list[tuple[str, str, str]]:
    return [
        (f"{r.dreamers} processes dream at the same instant ({ON[r.backend]})", "dreams raced (rounds)",
         f"{r.dreams_raced} ({len(r.rounds)})"),
        ("", "one proceeded, the others told a dream is running", f"{r.one_proceeded_rest_refused} of {len(r.rounds)}"),
        ("", "rounds with several proceeding: overlapping / one after the other",
         f"{r.proceeded_overlapping} / {r.proceeded_apart}"),
        ("two processes apply two proposals over the same memory at once", "applies raced",
         str(r.applies_raced)),
        ("", "rounds with both applied / memory exactly the one applied",
         f"{r.applied_both} / {r.memory_exact} of {len(r.rounds)}"),
        ("", "databases failing `reverie doctor` afterwards", str(r.unhealthy)),
    ]


def _stale_rows(lock: StaleLock) -> list[tuple[str, str, str]]:
    return [
        ("a dreamer killed -9 while holding the dream lock", "next dream while its lease stands",
         lock.while_held.get("refused", "proceeded")),
        ("", "next dream once the lease has lapsed", "proceeded" if "proposal" in lock.after_lapse
         else lock.after_lapse.get("refused", "?")),
    ]


def as_json(figures: Figures) -> dict:
    return {
        "ok": figures.ok,
        "writes": [{
            "backend": w.backend, "transport": w.transport, "servers": w.servers, "clients": w.clients, "attempted": w.attempted,
            "acknowledged": w.acknowledged, "present": w.present, "errors": len(w.errors), "locked": w.locked,
            "reads": w.reads, "reads_missing_own_write": w.reads_missing_own_write, "problems": w.problems,
            "error_samples": w.errors[:5], "seconds": round(w.seconds, 2),
        } for w in figures.writes],
        "kills": [{
            "backend": k.backend, "worker": k.worker, "ops": k.ops, "apply_seconds": round(k.apply_seconds, 3), "trials": len(k.trials),
            "before": k.count("before"), "after": k.count("after"), "neither": k.count("neither"),
            "unhealthy": k.unhealthy, "seconds": round(k.seconds, 2),
            "delays": [{"delay": round(t.delay, 4), "outcome": t.outcome} for t in k.trials],
        } for k in figures.kills],
        "races": None if figures.races is None else {
            "backend": figures.races.backend, "dreamers": figures.races.dreamers,
            "rounds": len(figures.races.rounds), "dreams_raced": figures.races.dreams_raced,
            "one_proceeded_rest_refused": figures.races.one_proceeded_rest_refused,
            "proceeded_overlapping": figures.races.proceeded_overlapping,
            "proceeded_apart": figures.races.proceeded_apart,
            "applies_raced": figures.races.applies_raced, "applied_both": figures.races.applied_both,
            "memory_exact": figures.races.memory_exact, "unhealthy": figures.races.unhealthy,
            "refusals": dict(figures.races.refusals()), "seconds": round(figures.races.seconds, 2),
        },
        "stale_lock": None if figures.stale_lock is None else {
            "holder": figures.stale_lock.holder, "while_held": figures.stale_lock.while_held.get("refused"),
            "after_lapse": "proceeded" if "proposal" in figures.stale_lock.after_lapse else "refused",
            "recovered": figures.stale_lock.recovered,
        },
        "notes": figures.notes,
    }
