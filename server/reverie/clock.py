"""Time in one place: UTC, ISO-8601 strings in the database, aware datetimes in code."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_iso(moment: datetime) -> str:
    return as_utc(moment).isoformat(timespec="microseconds")


def from_iso(text: str | None) -> datetime | None:
    return None if text is None else as_utc(datetime.fromisoformat(text))


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes from transcripts are taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
