"""A suppression's detail is kept to the stored text limit (`audit_text.clipped`), as a
message's and an attempt's error are: a provider's reply can be of any length."""
import pytest

from notifications.audit_text import STORED_TEXT_LIMIT
from notifications.models import Reason, Scope
from notifications.policies import suppression

pytestmark = pytest.mark.django_db


def test_a_suppressions_detail_is_kept_to_the_stored_text_limit_by_one_and_by_many():
    long = "5.1.1 " + "x" * 3 * STORED_TEXT_LIMIT
    one = suppression.suppress(address="long1@techconnect.bj", scope=Scope.ALL, reason=Reason.BOUNCE, detail=long)
    [many] = suppression.suppress_many([suppression.Wanted(address="long2@techconnect.bj", scope=Scope.ALL,
                                                           reason=Reason.BOUNCE, detail=long)])
    for row in (one, many):
        row.refresh_from_db()
        assert row.detail == long[:STORED_TEXT_LIMIT]
