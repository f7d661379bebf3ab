"""The lexicon is reviewed data: every rule names its guidance and proves itself on examples.

A positive example must make its own rule fire; a negative example (a near miss) must not.
Suppressor examples must stand the whole message down, or, for the near misses, not.
"""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from workers.triage.detector import CATEGORIES, LEXICON_PATH, assess, explain
from workers.triage.normalise import Matcher, Normaliser, Pattern

LEXICON: dict[str, Any] = tomllib.loads(LEXICON_PATH.read_text(encoding="utf-8"))
RULES: list[dict[str, Any]] = LEXICON["rule"]
SUPPRESSORS: list[dict[str, Any]] = LEXICON["suppressor"]


def fired_rules(text: str) -> set[str]:
    return {finding.rule for finding in explain(text) if finding.status == "fired"}


def examples(entries: list[dict[str, Any]], key: str) -> list[Any]:
    return [
        pytest.param(entry["id"], text, id=f"{entry['id']}: {text[:40]}")
        for entry in entries
        for text in entry.get(key, [])
    ]


def test_ids_are_unique() -> None:
    ids = [entry["id"] for entry in (*RULES, *SUPPRESSORS, *LEXICON["acute"])]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule["id"])
def test_rule_is_documented(rule: dict[str, Any]) -> None:
    assert rule["category"] in CATEGORIES
    assert rule["category"].startswith(rule["id"].split(".")[0]), "id prefix names the category"
    assert len(rule["source"]) > 10, "name the public guidance the rule follows"
    assert rule.get("patterns") or rule.get("together") or rule.get("alongside")
    for combo in rule.get("together", []):
        assert combo.count("&") >= 1, "a co-occurrence needs two concepts or more"
    assert rule["examples_positive"] and rule["examples_negative"]


@pytest.mark.parametrize("entry", SUPPRESSORS, ids=lambda entry: entry["id"])
def test_suppressor_is_documented(entry: dict[str, Any]) -> None:
    assert entry["scope"] in ("phrase", "near", "clause", "sentence")
    assert len(entry["source"]) > 10
    assert entry["examples_negative"] and entry["examples_positive"]


def test_every_category_has_rules() -> None:
    assert {rule["category"] for rule in RULES} == set(CATEGORIES)


@pytest.mark.parametrize(("rule", "text"), examples(RULES, "examples_positive"))
def test_positive_example_fires_its_rule(rule: str, text: str) -> None:
    assert rule in fired_rules(text), explain(text)


@pytest.mark.parametrize(("rule", "text"), examples(RULES, "examples_negative"))
def test_negative_example_does_not_fire_its_rule(rule: str, text: str) -> None:
    assert rule not in fired_rules(text), explain(text)


@pytest.mark.parametrize(("suppressor", "text"), examples(SUPPRESSORS, "examples_negative"))
def test_suppressor_stands_the_message_down(suppressor: str, text: str) -> None:
    assert not assess(text).emergency, explain(text)


@pytest.mark.parametrize(
    ("suppressor", "text"), examples([*SUPPRESSORS, *LEXICON["acute"]], "examples_positive")
)
def test_suppressor_does_not_overreach(suppressor: str, text: str) -> None:
    assert assess(text).emergency, explain(text)


# ---------------------------------------------------------------- the pattern language
def matches(pattern: str, text: str, sets: dict[str, list[str]] | None = None) -> list[str]:
    """The token sequences `pattern` matches in `text`."""
    matcher = Matcher()
    compiled = Pattern(pattern, sets or {})
    matcher.add(compiled, ("rule", 0))
    normaliser = Normaliser({"jai": "j'ai"}, [], ["mais"], compiled.words, compiled.stems, 7)
    tokens = normaliser.tokens(text)
    return [" ".join(t.text for t in tokens[h.start : h.end]) for h in matcher.hits(tokens)]


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("douleur poitrine", "Douleur, POITRINE", ["douleur poitrine"]),
        ("respir*", "je respirais", ["respirais"]),
        ("{mal a la|douleur dans} poitrine", "douleur dans poitrine", ["douleur dans poitrine"]),
        ("[tres] mal", "très mal", ["tres mal", "mal"]),
        ("douleur ..2 poitrine", "douleur dans la poitrine", ["douleur dans la poitrine"]),
        ("douleur ..1 poitrine", "douleur dans la poitrine", []),
        ("douleur .. poitrine", "douleur. Poitrine", []),
        ("# semaines", "38,5 semaines", ["38,5 semaines"]),
        ("/3[89]([.,][0-9])?/ de fievre", "38,5 de fièvre", ["38,5 de fievre"]),
        ("@chest", "thorax", ["thorax"]),
        ("j'ai mal", "jai mal", ["j ai mal"]),
        ("appelle", "apppeeelle", ["apele"]),
    ],
)
def test_pattern_syntax(pattern: str, text: str, expected: list[str]) -> None:
    assert matches(pattern, text, {"chest": ["poitrine", "thorax"]}) == expected


@pytest.mark.parametrize(
    "pattern", ["{a|b", "a }", "..2 a", "a ..2", "[a]", "{[a]|b} ..2", "@missing", "a ?"]
)
def test_bad_patterns_are_refused_at_load(pattern: str) -> None:
    with pytest.raises((ValueError, KeyError)):
        Pattern(pattern, {})
