"""What became of decided loans: outcomes recorded against decision ids, idempotently.

One code path for both channels: ``POST /v1/outcomes`` (:mod:`service.routes.outcomes`) and
``loanrisk outcomes import FILE`` (:mod:`cli.outcomes`) validate rows with :class:`OutcomeIn` and
write them with :func:`record_outcomes`. The rules:

- an outcome refers to one applicant's decision id (``request_id``; in a batch each applicant has
  its own); an id with no decision is reported back as unknown, and nothing is written for it;
- an id appears at most once in one request or file (:func:`repeated_ids`): which of two rows
  is right cannot be known, so a request repeating one is refused whole (422) and a file's rows
  of that id are all invalid;
- the same outcome again (same ``defaulted`` and ``observed_at``) changes nothing (``unchanged``);
- a different outcome for an id that has one is a correction: the ``outcomes`` row takes the new
  value, and ``outcome_corrections`` keeps what it was, what it became, when and from where.

Outcomes arrive for approved loans only (a declined applicant never has one): the monitor never
counts an applicant without an outcome as repaid.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from service.audit.schema import decisions, outcome_corrections, outcomes

Source = Literal["api", "import"]
# Ids are looked up this many at a time: well under every driver's parameter limit.
_LOOKUP_CHUNK = 500


class OutcomeIn(BaseModel):
    """One loan's outcome: ``request_id`` (the decision id, 1-64 characters), ``defaulted``
    (``true`` or ``false``; JSON booleans only over the API) and ``observed_at`` (when the loan
    system established it: an ISO 8601 date or date-time; a date means its midnight UTC, a
    date-time without an offset is taken as UTC)."""

    model_config = ConfigDict(extra="forbid")

    request_id: Annotated[str, Field(min_length=1, max_length=64)]
    defaulted: StrictBool
    observed_at: datetime | date

    @field_validator("observed_at")
    @classmethod
    def _in_utc(cls, value: datetime | date) -> datetime:
        return as_utc(value)


class OutcomesRequest(BaseModel):
    """The body of ``POST /v1/outcomes``: 1-10,000 outcomes, each ``request_id`` at most once."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "outcomes": [
                        {
                            "request_id": "0193f1d2c4a87b3e9f6a2b1c0d9e8f7a",
                            "defaulted": False,
                            "observed_at": "2025-06-30",
                        }
                    ]
                }
            ]
        },
    )

    outcomes: Annotated[list[OutcomeIn], Field(min_length=1, max_length=10_000)]


class OutcomesResult(BaseModel):
    """What became of each row: counts, and the ids that have no decision (in input order)."""

    recorded: int = Field(description="New outcomes stored")
    unchanged: int = Field(description="Outcomes already stored exactly so: nothing was written")
    corrected: int = Field(description="Outcomes that changed a stored one (history kept)")
    unknown: list[str] = Field(description="Request ids with no decision: nothing stored")


def repeated_ids(ids: Sequence[Hashable]) -> dict[int, int]:
    """Each position (0-based) whose id an earlier position holds, mapped to the first position
    holding it; empty when no id repeats."""
    first: dict[Hashable, int] = {}
    repeats: dict[int, int] = {}
    for position, request_id in enumerate(ids):
        earlier = first.setdefault(request_id, position)
        if earlier != position:
            repeats[position] = earlier
    return repeats


def refuse_repeated_ids(rows: Sequence[OutcomeIn]) -> None:
    """Raise a ValidationError naming every row of ``POST /v1/outcomes`` whose ``request_id`` an
    earlier row holds: loc ``("outcomes", 3, "request_id")``, message ``repeats outcomes[0]``."""
    repeats = repeated_ids([row.request_id for row in rows])
    if not repeats:
        return
    errors: list[Any] = []
    for position, first in repeats.items():
        error = PydanticCustomError("repeated_id", "repeats outcomes[{first}]", {"first": first})
        loc = ("outcomes", position, "request_id")
        errors.append({"type": error, "loc": loc, "input": rows[position].request_id})
    raise ValidationError.from_exception_data("OutcomesRequest", errors)


def as_utc(value: datetime | date) -> datetime:
    """A date-time in UTC: a date is its midnight, a naive date-time is taken as UTC."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time(), tzinfo=UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def record_outcomes(
    engine: Engine, rows: Sequence[OutcomeIn], source: Source, now: datetime | None = None
) -> OutcomesResult:
    """Store validated outcomes in one transaction; see the module's rules.

    A concurrent writer inserting the same new id first makes this transaction fail on the
    primary key: it is retried once, and then finds that row. Raises ValueError when an id
    appears twice in ``rows`` (callers refuse those rows first: :func:`repeated_ids`), and
    :class:`sqlalchemy.exc.SQLAlchemyError` when the database fails.
    """
    if repeated_ids([row.request_id for row in rows]):
        raise ValueError("a request_id appears more than once in the rows to record")
    try:
        return _record(engine, rows, source, now)
    except IntegrityError:
        return _record(engine, rows, source, now)


def _record(
    engine: Engine, rows: Sequence[OutcomeIn], source: Source, now: datetime | None
) -> OutcomesResult:
    now = as_utc(now or datetime.now(UTC))
    ids = [row.request_id for row in rows]
    recorded = unchanged = corrected = 0
    unknown: list[str] = []
    with engine.begin() as connection:
        known: set[str] = set()
        stored: dict[str, tuple[bool, datetime, int]] = {}
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start : start + _LOOKUP_CHUNK]
            known.update(
                connection.execute(
                    select(decisions.c.request_id).where(decisions.c.request_id.in_(chunk))
                ).scalars()
            )
            for request_id, defaulted, observed_at, count in connection.execute(
                select(
                    outcomes.c.request_id,
                    outcomes.c.defaulted,
                    outcomes.c.observed_at,
                    outcomes.c.corrections,
                ).where(outcomes.c.request_id.in_(chunk))
            ):
                stored[request_id] = (bool(defaulted), as_utc(observed_at), int(count))
        for row in rows:
            if row.request_id not in known:
                unknown.append(row.request_id)
                continue
            observed_at = as_utc(row.observed_at)
            before = stored.get(row.request_id)
            if before is None:
                connection.execute(
                    insert(outcomes).values(
                        request_id=row.request_id,
                        defaulted=row.defaulted,
                        observed_at=observed_at,
                        recorded_at=now,
                        source=source,
                        corrections=0,
                    )
                )
                stored[row.request_id] = (row.defaulted, observed_at, 0)
                recorded += 1
                continue
            defaulted, previous_at, count = before
            if (defaulted, previous_at) == (row.defaulted, observed_at):
                unchanged += 1
                continue
            connection.execute(
                insert(outcome_corrections).values(
                    request_id=row.request_id,
                    previous_defaulted=defaulted,
                    previous_observed_at=previous_at,
                    defaulted=row.defaulted,
                    observed_at=observed_at,
                    corrected_at=now,
                    source=source,
                )
            )
            connection.execute(
                update(outcomes)
                .where(outcomes.c.request_id == row.request_id)
                .values(
                    defaulted=row.defaulted,
                    observed_at=observed_at,
                    recorded_at=now,
                    source=source,
                    corrections=count + 1,
                )
            )
            stored[row.request_id] = (row.defaulted, observed_at, count + 1)
            corrected += 1
    return OutcomesResult(
        recorded=recorded, unchanged=unchanged, corrected=corrected, unknown=unknown
    )
