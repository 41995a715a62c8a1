"""The browsable API's renderer, in the request's language.

DRF's own labels the raw-data form with 'Media type' and 'Content' written as plain text
(never through gettext), so they showed English in the French browsable API.
"""
from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework.renderers import BrowsableAPIRenderer


class TranslatedBrowsableAPIRenderer(BrowsableAPIRenderer):
    def get_raw_data_form(self, data, view, method, request):
        form = super().get_raw_data_form(data, view, method, request)
        if form is not None:
            labels = {"_content_type": _("Media type"), "_content": _("Content")}
            for name, label in labels.items():
                if name in form.fields:
                    form.fields[name].label = label
        return form
