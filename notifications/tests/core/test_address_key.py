"""`core.addresses.address_key`: the one form addresses are compared in."""
import pytest

from notifications.core.addresses import address_key
from notifications.models import Suppression


def test_an_email_address_is_compared_trimmed_and_in_lower_case_whole():
    assert address_key(" Awa.Diallo@TechConnect.BJ ") == "awa.diallo@techconnect.bj"
    assert address_key("Awa.Diallo@techconnect.bj", kind="email") == address_key("awa.diallo@TECHCONNECT.bj")


def test_an_address_kind_without_a_key_is_refused_not_compared_as_email():
    with pytest.raises(ValueError, match="'sms'"):
        address_key("+229 97 00 00 00", kind="sms")


@pytest.mark.django_db
def test_a_suppression_is_stored_under_its_address_key():
    suppression = Suppression.objects.create(address=" Awa@TechConnect.bj", scope="all", reason="bounce")
    suppression.refresh_from_db()
    assert suppression.address == "awa@techconnect.bj"
