"""Notifications are kept MOTCUA_RETENTION_NOTIFICATIONS_DAYS (default a year) after they
were made: a TTL index on created_at that prepare sets from the setting, and moves when
the setting changes (against the SecantusDB server)."""
from __future__ import annotations

from dataclasses import replace

from motcua_notify import bootstrap, store


def retention(db):
    return db[store.NOTIFICATIONS].index_information().get("retention")


def test_notifications_expire_after_the_configured_period(settings, service_db):
    db = service_db("notify")
    bootstrap.prepare(settings)
    index = retention(db)
    assert index["key"] == [("created_at", 1)] and index["expireAfterSeconds"] == 365 * 86400
    bootstrap.prepare(replace(settings, extra={"MOTCUA_RETENTION_NOTIFICATIONS_DAYS": "90"}))
    assert retention(db)["expireAfterSeconds"] == 90 * 86400
    bootstrap.prepare(replace(settings, extra={"MOTCUA_RETENTION_NOTIFICATIONS_DAYS": "0"}))
    assert retention(db) is None  # kept for ever
    assert "newest_first" in db[store.NOTIFICATIONS].index_information()  # the listing's index is untouched
