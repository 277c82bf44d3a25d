"""Stored times: on SQLite, UTCDateTime binds the text SQLAlchemy's own DATETIME stores,
so databases written before keep reading, sorting and comparing the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, create_engine, select
from sqlalchemy.dialects import sqlite

from hub import tables

TIMES = [
    datetime(2026, 7, 27, 21, 21, 5, tzinfo=UTC),
    datetime(2026, 7, 27, 21, 21, 5, 123456, tzinfo=UTC),
    datetime(2026, 1, 1, 7, 59, 59, 999999, tzinfo=timezone(timedelta(hours=8))),
    datetime(2025, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


@pytest.mark.parametrize("value", TIMES, ids=str)
def test_a_time_is_stored_in_sqlite_as_sqlalchemys_datetime_stores_it(value: datetime) -> None:
    dialect = sqlite.dialect()
    sqlalchemy_own = DateTime().dialect_impl(dialect).bind_processor(dialect)
    ours = tables.UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert sqlalchemy_own is not None
    assert ours is not None

    assert sqlalchemy_own(value.astimezone(UTC).replace(tzinfo=None)) == ours(value)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        tables.sqlite_time(datetime(2026, 7, 27, 21, 21, 5))


def test_stored_times_read_back_as_the_same_instants_in_utc_and_sort_by_instant(
    tmp_path: Path,
) -> None:
    metadata = MetaData()
    times = Table(
        "times",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("at", tables.UTCDateTime()),
    )
    engine = create_engine(f"sqlite:///{tmp_path}/times.db")
    metadata.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(times.insert(), [{"id": n, "at": at} for n, at in enumerate(TIMES)])
            read = [row.at for row in conn.execute(select(times).order_by(times.c.id))]
            by_text = [row.id for row in conn.execute(select(times).order_by(times.c.at))]
    finally:
        engine.dispose()

    assert TIMES == read
    assert {UTC} == {at.tzinfo for at in read}
    assert sorted(range(len(TIMES)), key=lambda n: TIMES[n]) == by_text
