"""`send_at`: when a scheduled message may leave, checked once for every entry point."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from notifications.exceptions import InvalidSchedule


def parse_send_at(value: datetime | str | None) -> datetime | None:
    """An aware datetime, or None for "now".

    Accepts an aware `datetime` or ISO 8601 text with an offset (`2026-12-24T08:00:00+01:00`,
    `…Z`). A naive time is refused rather than guessed: the caller's zone is unknown. A time
    past means now; one more than `OUTBOX_MAX_SCHEDULE_DAYS` ahead is refused.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is None:
            raise InvalidSchedule(
                _("send_at %(value)s is not an ISO 8601 date and time, e.g. 2026-12-24T08:00:00+01:00.")
                % {"value": repr(value)}
            )
        value = parsed
    if not isinstance(value, datetime):
        raise InvalidSchedule(_("send_at must be an ISO 8601 date and time with a time zone offset."))
    if timezone.is_naive(value):
        raise InvalidSchedule(
            _("send_at needs a time zone offset (e.g. +01:00 or Z): a time without one is ambiguous.")
        )
    now = timezone.now()
    if value <= now:
        return None
    horizon = timedelta(days=settings.OUTBOX_MAX_SCHEDULE_DAYS)
    if value - now > horizon:
        raise InvalidSchedule(
            _("send_at is more than %(days)s days ahead (OUTBOX_MAX_SCHEDULE_DAYS).")
            % {"days": f"{settings.OUTBOX_MAX_SCHEDULE_DAYS:g}"}
        )
    return value
