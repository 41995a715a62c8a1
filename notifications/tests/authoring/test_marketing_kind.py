"""Marketing is a template's kind, the one notion the suppression policy reads, not also one
of its categories (issue 20, migration 0018)."""
import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from notifications.authoring.versions import create_template
from notifications.models import Category, Kind

BEFORE = [("notifications", "0020_rename_emailmessage_message")]
AFTER = [("notifications", "0021_marketing_is_a_kind")]


@pytest.mark.django_db
def test_a_template_of_category_marketing_is_refused_naming_the_category():
    with pytest.raises(ValidationError) as refused:
        create_template(key="promo", category="marketing", kind=Kind.MARKETING, versions={})
    assert list(refused.value.message_dict) == ["category"]
    assert "marketing" not in Category.values and "marketing" in Kind.values


@pytest.mark.django_db(transaction=True)
def test_the_migration_makes_a_marketing_category_a_marketing_kind_and_keeps_the_others():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    Template = executor.loader.project_state(BEFORE).apps.get_model("notifications", "EmailTemplate")
    given = {"promo_only_by_category": ("marketing", "transactional"), "promo_both": ("marketing", "marketing"),
             "newsletter_billing": ("billing", "marketing"), "invoice": ("billing", "transactional")}
    for key, (category, kind) in given.items():
        Template.objects.create(key=key, category=category, kind=kind)

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    Template = executor.loader.project_state(AFTER).apps.get_model("notifications", "EmailTemplate")
    assert dict(Template.objects.filter(key__in=given).values_list("key", "category")) == {
        "promo_only_by_category": "other", "promo_both": "other", "newsletter_billing": "billing", "invoice": "billing"}
    assert dict(Template.objects.filter(key__in=given).values_list("key", "kind")) == {
        "promo_only_by_category": "marketing", "promo_both": "marketing", "newsletter_billing": "marketing",
        "invoice": "transactional"}
    Template.objects.filter(key__in=given).delete()
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
