# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Time as the ledger and the lock write it: UTC, to the second, ISO-8601 with a Z."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# datetime.UTC is Python 3.11+; modules run on the target's Python (3.8 and later).
UTC = timezone.utc  # noqa: UP017


def utc_now():
    return datetime.now(UTC)


def format_time(moment):
    """UTC ISO-8601 with seconds: 2026-11-26T17:00:00Z."""
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text):
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def after_seconds(now, seconds):
    """now + seconds, rounded up to the second: a stored deadline is never earlier than asked."""
    moment = now + timedelta(seconds=seconds)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return format_time(moment)


def from_epoch(seconds):
    return datetime.fromtimestamp(seconds, UTC)
