"""The base of our commands: they speak the process's language (`LANGUAGE_CODE`).

Django runs a command with no language activated, so `gettext` answers in `LANGUAGE_CODE`:
messages follow it already. `help` is a class attribute, evaluated at import, so it is
`gettext_lazy`; argparse's formatter runs regular expressions on the description and
refuses a lazy string, so the parser gets it as text, translated when it is built.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand


class TranslatedCommand(BaseCommand):
    def create_parser(self, prog_name: str, subcommand: str, **kwargs):
        self.help = str(self.help)
        return super().create_parser(prog_name, subcommand, **kwargs)
