"""What an edit of a template was based on, and who changed the template since: stale saves refused.

Two editors open one template, both change the French wording, both save: without a check the
second save silently replaces the first's version (its form still holds the wording as it was
when opened). So every way of editing carries the state it was opened on, and a save whose base
is no longer the template's state is refused, naming who saved what and when:

- the admin editor's form carries it in a hidden field (`opened_state`);
- the API's `GET /templates/{key}` answers it as the `ETag`, which a `PUT` sends back in
  `If-Match`; or a `PUT` names the version its wording started from (`base_version`).

The state is a token, `en1.fr2~3f9a0c1b2d4e`: each language's active version number (so a
refusal can name the languages that changed), then a fingerprint of the template row's last
save and of the active versions' ids (so a change of the template's settings, or a rollback,
changes it too). It is not a secret: forging one only turns off one's own protection.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from notifications.exceptions import InputError, StaleEdit
from notifications.models import EmailTemplate, EmailTemplateVersion, TemplateVersionActivation

_NUMBER = re.compile(r"([a-z]+(?:-[a-z0-9]+)*?)(\d+)")
_TOKEN = re.compile(r"((?:[a-z]+(?:-[a-z0-9]+)*?\d+)(?:\.[a-z]+(?:-[a-z0-9]+)*?\d+)*)?~([0-9a-f]{12})")
#: An entity tag as RFC 9110 writes it, weak or strong (compared on its opaque part).
_ENTITY_TAG = re.compile(r'\s*(?:W/)?"([\x21\x23-\x7e]*)"\s*')


@dataclass(frozen=True)
class EditState:
    """A template's state as an editor saw it: each language's active version number, and a
    fingerprint of the whole (settings and active versions)."""

    numbers: dict[str, int]
    fingerprint: str

    @property
    def token(self) -> str:
        return ".".join(f"{language}{number}" for language, number in sorted(self.numbers.items())) + \
            f"~{self.fingerprint}"

    @property
    def etag(self) -> str:
        return f'"{self.token}"'

    @classmethod
    def parse(cls, token: str) -> EditState | None:
        """The state a token names, or None when it is not one of ours."""
        match = _TOKEN.fullmatch(token.strip())
        if match is None:
            return None
        numbers = {}
        for part in (match.group(1) or "").split(".") if match.group(1) else []:
            language, number = _NUMBER.fullmatch(part).groups()
            numbers[language] = int(number)
        return cls(numbers=numbers, fingerprint=match.group(2))


def current_state(
    template: EmailTemplate, *, active_versions: Iterable[EmailTemplateVersion] | None = None
) -> EditState:
    """The template's state now; `active_versions` when the caller has them loaded already."""
    if active_versions is None:
        active_versions = template.versions.filter(is_active=True)
    active = sorted(active_versions, key=lambda version: version.language)
    updated = template.updated_at.isoformat() if template.updated_at else ""
    seed = "|".join([str(template.pk), updated, *(f"{v.language}:{v.pk}" for v in active)])
    return EditState(numbers={v.language: v.version for v in active},
                     fingerprint=hashlib.sha256(seed.encode()).hexdigest()[:12])


def if_match_tags(header: str | None) -> list[str] | None:
    """The opaque parts of an `If-Match` header's entity tags; `["*"]` for any; None without one.

    A weak tag (`W/"…"`, as a compressing proxy may make of ours) is taken as its opaque
    part: the token names the exact state either way. Raises `InputError` naming the
    header when it is not a list of quoted tags.
    """
    if header is None:
        return None
    if header.strip() == "*":
        return ["*"]
    tags = []
    for item in header.split(","):
        match = _ENTITY_TAG.fullmatch(item)
        if match is None:
            raise InputError(
                _('If-Match takes the ETag a GET of the template answered, quoted as it came (e.g. "%(example)s").')
                % {"example": "en1.fr2~3f9a0c1b2d4e"},
                field="If-Match", code="invalid_precondition",
            )
        tags.append(match.group(1))
    return tags


@dataclass(frozen=True)
class Change:
    """One save made after an edit's base: a language's new active version, or the settings."""

    language: str | None
    version: EmailTemplateVersion | None
    saved_by: str
    saved_at: datetime
    rollback: bool = False

    def describe(self) -> str:
        when = date_format(timezone.localtime(self.saved_at), "Y-m-d H:i:s")
        if self.version is None:
            return _("the template's settings were saved by %(user)s at %(time)s") % {
                "user": self.saved_by, "time": when}
        if self.rollback:
            return _("%(version)s was made active again by %(user)s at %(time)s") % {
                "version": str(self.version), "user": self.saved_by, "time": when}
        return _("%(version)s was saved by %(user)s at %(time)s") % {
            "version": str(self.version), "user": self.saved_by, "time": when}

    def as_dict(self) -> dict:
        return {
            "language": self.language, "version": self.version.version if self.version else None,
            "id": str(self.version.pk) if self.version else None, "saved_by": self.saved_by,
            "saved_at": self.saved_at.isoformat().replace("+00:00", "Z"), "rollback": self.rollback,
        }


def _who(user) -> str:
    return user.get_username() if user is not None else _("someone (a command or an import)")


def version_change(template: EmailTemplate, version: EmailTemplateVersion) -> Change:
    """Who made `version` the active one, and when: its last activation, else its creation."""
    activation = (TemplateVersionActivation.objects.filter(template=template, version=version)
                  .select_related("activated_by").order_by("-activated_at", "-id").first())
    if activation is not None:
        return Change(language=version.language, version=version, saved_by=_who(activation.activated_by),
                      saved_at=activation.activated_at, rollback=activation.rollback)
    return Change(language=version.language, version=version, saved_by=_who(version.created_by),
                  saved_at=version.created_at)


def changes_since(template: EmailTemplate, base: EditState | None) -> list[Change]:
    """The saves that made `template` differ from `base`: each language whose active version
    is another, else (only the settings changed) the template's last save."""
    active = {v.language: v for v in template.versions.filter(is_active=True).select_related("template", "created_by")}
    numbers = base.numbers if base is not None else {}
    changes = [version_change(template, active[language]) for language in sorted(active)
               if numbers.get(language) != active[language].version]
    if not changes and (base is None or base != current_state(template, active_versions=active.values())):
        # The same numbers, another state: the settings were saved, or a version was saved and
        # then rolled back (whichever came last is named).
        last = (TemplateVersionActivation.objects.filter(template=template).select_related("version__template")
                .order_by("-activated_at", "-id").first())
        if last is not None and template.updated_at is not None and last.activated_at >= template.updated_at:
            changes.append(version_change(template, last.version))
        else:
            changes.append(Change(language=None, version=None, saved_by=_who(template.updated_by),
                                  saved_at=template.updated_at))
    return changes


def refuse_if_stale(
    *, template: EmailTemplate, opened: str | None = None, if_match: Sequence[str] | None = None,
    base_version: int | None = None, language: str | None = None, message: str,
) -> bool:
    """Raise `StaleEdit` when the edit's base is not `template`'s state; True when the edit had one.

    `template` is read under its lock by the caller, so no save can slip in between this check
    and the write. `opened` is a token (the editor's form), `if_match` the tags of an
    `If-Match` header, `base_version` the number of `language`'s active version the wording
    started from (0: there was none). `message` (with `%(changes)s`) starts the refusal.
    Without any of them the edit is unconditional: nothing is checked, False is answered.
    """
    if opened is None and if_match is None and base_version is None:
        return False
    now = current_state(template)
    stale, base = False, None
    if opened is not None and opened != now.token:
        stale, base = True, EditState.parse(opened)
    if not stale and if_match is not None and "*" not in if_match and now.token not in if_match:
        stale, base = True, next((s for s in map(EditState.parse, if_match) if s is not None), None)
    if not stale and base_version is not None and now.numbers.get(language, 0) != base_version:
        stale, base = True, EditState(numbers={**now.numbers, language: base_version}, fingerprint=now.fingerprint)
    if not stale:
        return True
    changes = changes_since(template, base)
    if base_version is not None and opened is None and if_match is None:
        changes = [change for change in changes if change.language == language] or changes
    active = template.versions.filter(language=language, is_active=True).first() if language else None
    raise StaleEdit(
        message % {"changes": "; ".join(change.describe() for change in changes)},
        changes=changes, active_version=active and version_change(template, active), current_token=now.token,
    )
