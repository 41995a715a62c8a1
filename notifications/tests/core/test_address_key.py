"""`core.addresses.address_key`: the one form addresses are compared in."""
import pytest

from notifications.core.addresses import address_key
from notifications.models import Suppression


def test_an_email_address_is_compared_trimmed_and_in_lower_case_whole():
    assert address_key(" Awa.Diallo@TechConnect.BJ ") == "awa.diallo@techconnect.bj"
    assert address_key("Awa.Diallo@techconnect.bj", kind="email") == address_key("awa.diallo@TECHCONNECT.bj")


def test_another_address_kind_is_trimmed_never_compared_as_an_email_address():
    # Changed at the merge with the channel seams: a channel's suppression key goes through
    # address_key with the channel's kind, so another kind is kept as given, only trimmed.
    assert address_key(" Device-Token-AbC ", kind="push") == "Device-Token-AbC"


@pytest.mark.django_db
def test_a_suppression_is_stored_under_its_address_key():
    suppression = Suppression.objects.create(address=" Awa@TechConnect.bj", scope="all", reason="bounce")
    suppression.refresh_from_db()
    assert suppression.address == "awa@techconnect.bj"
