"""Every string marked for translation has a French translation that keeps its placeholders.

Messages are extracted from the source tree with Babel's Python API, with the method map of
babel.cfg and the keywords of scripts/update-translations, exactly as the script does. So a
string added to the code or a template without a French translation fails here, in CI, rather
than showing up in English to a patient. To fix such a failure, run
`scripts/update-translations` and translate the new entries of
web/locales/fr/LC_MESSAGES/messages.po.

No database and no HTTP: only files, Babel and the Jinja2 i18n extension.
"""

from __future__ import annotations

import io
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract, extract_from_dir
from babel.messages.frontend import parse_keywords, parse_mapping_cfg
from babel.messages.pofile import read_po
from jinja2 import Environment

from server import i18n

ROOT = Path(__file__).resolve().parent.parent
BABEL_CFG = ROOT / "babel.cfg"
UPDATE_SCRIPT = ROOT / "scripts" / "update-translations"
FRENCH_PO = ROOT / "web" / "locales" / "fr" / "LC_MESSAGES" / "messages.po"

# The -k options of `pybabel extract` in scripts/update-translations (checked below).
# `gettext:2,2t` is server.i18n.gettext(locale, message); `gettext:1,1t` is how Jinja2 reports
# {% trans %} blocks, which a bare `gettext:2` would silently drop.
KEYWORD_OPTIONS = ("N_", "gettext:2,2t", "gettext:1,1t")
KEYWORDS = {**DEFAULT_KEYWORDS, **parse_keywords(KEYWORD_OPTIONS)}

# printf-style conversions as Python's % operator reads them: `%(name)s`, `%d`, `%%`...
PLACEHOLDER = re.compile(
    r"%(?:\((?P<name>[^)]*)\))?[#0 +-]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[diouxXeEfFgGcrsa%]"
)


@dataclass(frozen=True)
class Extracted:
    msgid: str
    plural: str | None
    context: str | None
    where: str


def _mapping() -> tuple[list[tuple[str, str]], dict[str, dict[str, str]]]:
    with BABEL_CFG.open(encoding="utf-8") as cfg:
        return parse_mapping_cfg(cfg, str(BABEL_CFG))


@cache
def extracted_messages() -> tuple[Extracted, ...]:
    method_map, options_map = _mapping()
    found = []
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        msgid, plural = (message, None) if isinstance(message, str) else message[:2]
        found.append(Extracted(msgid, plural, context, f"{filename}:{lineno}"))
    return tuple(found)


@cache
def french_catalog() -> Catalog:
    with FRENCH_PO.open("rb") as po_file:
        return read_po(po_file, locale="fr")


def _extract_keyword_options(script: str) -> tuple[str, ...]:
    lines = script.replace("\\\n", " ").splitlines()
    command = next(line for line in lines if line.startswith("pybabel extract "))
    return tuple(value for flag, value in pairwise(shlex.split(command)) if flag == "-k")


def test_script_and_test_extract_with_the_same_keywords() -> None:
    script = UPDATE_SCRIPT.read_text(encoding="utf-8")
    assert _extract_keyword_options(script) == KEYWORD_OPTIONS
    assert "-F babel.cfg" in script


def test_the_configuration_catches_every_way_of_marking_a_string() -> None:
    """Guards against a configuration that extracts nothing, which would pass vacuously."""
    method_map, options_map = _mapping()
    python = b'N_("a")\ngettext(locale, "b")\n_("c")\nlog.info("not for people")\n'
    template = b'{{ _("d") }} {% trans %}e{% endtrans %} {{ _("f %(n)d", n=1) }}'
    jinja_options = next(
        options_map[pattern] for pattern, method in method_map if method == "jinja2"
    )

    def ids(method: str, source: bytes, options: dict[str, str]) -> set[str]:
        found = extract(method, io.BytesIO(source), KEYWORDS, options=options)
        return {message for _lineno, message, _comments, _context in found}

    assert ids("python", python, {}) == {"a", "b", "c"}
    assert ids("jinja2", template, jinja_options) == {"d", "e", "f %(n)d"}
    places = {item.where.split(":")[0].rsplit(".", 1)[-1] for item in extracted_messages()}
    assert places == {"py", "html"}


def test_every_extracted_message_has_a_french_translation() -> None:
    catalog = french_catalog()
    problems = []
    for item in extracted_messages():
        entry = catalog.get(item.msgid, context=item.context)
        if entry is None:
            problems.append(f"{item.where}: {item.msgid!r} is not in the catalogue")
        elif entry.fuzzy:
            problems.append(f"{item.where}: {item.msgid!r} is marked fuzzy")
        elif not all(entry.string if isinstance(entry.string, tuple) else [entry.string]):
            problems.append(f"{item.where}: {item.msgid!r} has no French translation")
    assert not problems, (
        "Run scripts/update-translations, then translate these in "
        f"{FRENCH_PO.relative_to(ROOT)}:\n" + "\n".join(problems)
    )


def _translated_pairs() -> Iterator[tuple[str, str]]:
    """(English, French) for every translated form in the catalogue, plurals included."""
    for entry in french_catalog():
        if not entry.id or not entry.string:
            continue
        ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        for index, string in enumerate(strings):
            if string:
                yield ids[min(index, len(ids) - 1)], string


def _placeholders(text: str) -> tuple[set[str], list[str], int]:
    """Named placeholders, positional ones in order, and stray `%` signs that would break `%`."""
    named, positional = set(), []
    for match in PLACEHOLDER.finditer(text):
        if match.group("name") is not None:
            named.add(match.group())
        elif match.group() != "%%":
            positional.append(match.group())
    return named, positional, PLACEHOLDER.sub("", text).count("%")


def test_translations_keep_the_placeholders_of_their_message_id() -> None:
    problems = [
        f"{msgid!r} -> {string!r}"
        for msgid, string in _translated_pairs()
        if _placeholders(msgid) != _placeholders(string)
    ]
    assert not problems, "Placeholders differ:\n" + "\n".join(problems)


def test_the_placeholder_check_sees_a_broken_translation() -> None:
    assert _placeholders("Write to %(name)s") == _placeholders("Écrire à %(name)s")
    assert _placeholders("Write to %(name)s") != _placeholders("Écrire à %(nom)s")
    assert _placeholders("%(n)d min") != _placeholders("%(n)s min")
    assert _placeholders("%(n)d unread") != _placeholders("non lus")
    assert _placeholders("100%%") != _placeholders("100 %")


def test_french_and_english_at_run_time() -> None:
    assert i18n.gettext("fr", "Log in") == "Se connecter"
    assert i18n.gettext("en", "Log in") == "Log in"
    assert i18n.gettext("fr", "%(n)d min") % {"n": 5} == "5\u00a0min"
    assert i18n.gettext("fr", "A string nobody translated") == "A string nobody translated"


def test_templates_render_french_through_the_jinja2_i18n_extension() -> None:
    env = Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    env.install_gettext_translations(i18n.translations("fr"), newstyle=True)  # type: ignore[attr-defined]
    page = env.from_string(
        "{% trans %}Messaging is not for emergencies.{% endtrans %} "
        '{{ _("Write to %(name)s", name="Dr Martin") }}'
    )
    assert page.render() == "La messagerie n'est pas destinée aux urgences. Écrire à Dr Martin"
