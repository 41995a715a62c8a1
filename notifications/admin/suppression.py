"""The suppression list in the admin: read by Auditors, added to by hand and lifted by staff
with the permissions, never deleted (a lifted row keeps who lifted it and when)."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.core.addresses import address_key
from notifications.exceptions import InvalidRecipient
from notifications.models import Reason, Suppression
from notifications.channels.email.addresses import parse_address
from notifications.policies import suppression as service


class SuppressionForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ("address", "scope", "detail")

    def clean_address(self) -> str:
        try:
            address = address_key(parse_address(self.cleaned_data["address"], field="address"))
        except InvalidRecipient as exc:
            raise forms.ValidationError(exc.message) from None
        return address

    def clean(self) -> dict:
        data = super().clean()
        address, scope = data.get("address"), data.get("scope")
        if address and scope and Suppression.objects.active().filter(address=address, scope=scope).exists():
            self.add_error("address", _("%(address)s is already suppressed for this scope.") % {"address": address})
        return data


class ActiveFilter(admin.SimpleListFilter):
    title = gettext_lazy("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", gettext_lazy("Active")), ("lifted", gettext_lazy("Lifted"))]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(lifted_at__isnull=True)
        if self.value() == "lifted":
            return queryset.filter(lifted_at__isnull=False)
        return queryset


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    form = SuppressionForm
    list_display = ("address", "scope", "reason", "created_at", "created_by", "is_active", "lifted_at", "lifted_by")
    list_filter = (ActiveFilter, "scope", "reason")
    search_fields = ("address",)
    date_hierarchy = "created_at"
    list_select_related = ("created_by", "lifted_by")
    actions = ["lift"]
    readonly_fields = ("reason", "source_event", "created_at", "created_by", "lifted_at", "lifted_by")

    @admin.display(boolean=True, description=gettext_lazy("Active"))
    def is_active(self, obj: Suppression) -> bool:
        return obj.is_active

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        return ("address", "scope", "detail", *self.readonly_fields)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # lifted, never edited: the row says what was suppressed and why

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # `delete_suppression` lifts (the `lift` action); the row stays

    def has_lift_permission(self, request) -> bool:
        return request.user.has_perm("notifications.delete_suppression")

    def save_model(self, request, obj, form, change) -> None:
        obj.reason = Reason.MANUAL
        obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description=gettext_lazy("Lift selected suppressions (mail goes to them again)"),
                  permissions=["lift"])
    def lift(self, request, queryset) -> None:
        lifted = service.lift(queryset, by=request.user)
        self.message_user(request, _("%(count)d suppression(s) lifted.") % {"count": lifted}, messages.SUCCESS)
