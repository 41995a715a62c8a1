"""factory-boy factories. Versions are created through the service, as staff would."""
from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

from notifications.models import EmailTemplate
from notifications.authoring.versions import create_template_version

DEFAULT_VERSIONS = {
    "fr": {"subject": "Bonjour {{ name }}", "html_content": "<p>Bonjour {{ name }}</p>", "text_content": ""},
}


class EmailTemplateFactory(DjangoModelFactory):
    class Meta:
        model = EmailTemplate
        skip_postgeneration_save = True

    key = factory.Sequence(lambda n: f"template_{n}")
    name = factory.LazyAttribute(lambda o: o.key.replace("_", " ").title())
    category = "other"
    required_variables = factory.LazyFunction(lambda: ["name"])
    optional_variables = factory.LazyFunction(dict)
    layout = ""
    max_attempts = 3

    @factory.post_generation
    def versions(obj, create, extracted, **kwargs):
        if not create:
            return
        for language, parts in (extracted or DEFAULT_VERSIONS).items():
            create_template_version(template=obj, language=language, **parts)
