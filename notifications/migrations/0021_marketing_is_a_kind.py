"""Marketing is a template's kind, not one of its categories (issue 20: one notion).

The suppression policy has only ever read `kind`: a template of category `marketing` and
kind `transactional` went to unsubscribed addresses. Such a template was declared marketing
by its category, so it becomes kind `marketing` (and category `other`); one already of kind
`marketing` keeps it. Going back restores the choice, not which templates had it.
"""
from django.db import migrations, models


def marketing_category_to_kind(apps, schema_editor):
    EmailTemplate = apps.get_model("notifications", "EmailTemplate")
    EmailTemplate.objects.filter(category="marketing").update(category="other", kind="marketing")


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0020_rename_emailmessage_message'),
    ]

    operations = [
        migrations.RunPython(marketing_category_to_kind, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='emailtemplate',
            name='category',
            field=models.CharField(choices=[('billing', 'Billing'), ('incident', 'Incident'), ('onboarding', 'Onboarding'), ('rma', 'RMA'), ('support', 'Support'), ('account', 'Account'), ('other', 'Other')], default='other', max_length=50, verbose_name='category'),
        ),
    ]
