"""Translations: English message ids in code and templates, French shown by default.

Catalogues are the `.po` files under `web/locales`, compiled in memory at start-up so that no
build step is needed.
"""

from __future__ import annotations

import io
from functools import cache

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from server.settings import WEB_DIR

LOCALES = ("fr", "en")
DEFAULT_LOCALE = "fr"
LOCALE_DIR = WEB_DIR / "locales"


@cache
def translations(locale: str) -> NullTranslations:
    """The catalogue for `locale`; English is the message ids themselves."""
    path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == "en" or not path.exists():
        return NullTranslations()
    with path.open("rb") as po_file:
        catalog = read_po(po_file, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled)


def gettext(locale: str, message: str) -> str:
    return translations(locale).gettext(message)


def pick_locale(user_locale: str | None, cookie_locale: str | None) -> str:
    """The user's saved choice, else the visitor's cookie, else French.

    The browser's Accept-Language is not used: practices in France expect French pages even on
    phones set to another language, and English is one click away.
    """
    for candidate in (user_locale, cookie_locale):
        if candidate in LOCALES:
            return candidate
    return DEFAULT_LOCALE
