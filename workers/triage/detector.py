"""Emergency-wording detector: a pure function from a patient message to an assessment.

When a message describes an emergency, the patient is told at once to call 15 (SAMU) or 112, and
3114 for suicidal wording. Missing an emergency is the worst failure of the product, so the
detector flags when in doubt; it only stands down for wording that is clearly negated ("pas de
douleur thoracique"), past ("mon AVC il y a 5 ans"), idiomatic ("je meurs de faim"), hypothetical
or a general question ("quels sont les signes d'un AVC ?").

The vocabulary is data: lexicon.toml, reviewed against public guidance. This module compiles it
once at import and applies it clause by clause.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.triage.normalise import (
    Hit,
    Matcher,
    Normaliser,
    Pattern,
    Token,
    co_occurrences,
    plain_words,
)
from workers.triage.scopes import Scopes, is_negated

LEXICON_PATH = Path(__file__).with_name("lexicon.toml")

CATEGORIES = (
    "anaphylaxis",
    "bleeding",
    "breathing",
    "burns",
    "cardiac",
    "child_danger",
    "headache",
    "hypoglycaemia",
    "poisoning",
    "pregnancy",
    "seizure",
    "stroke",
    "suicidal",
    "trauma",
    "unconscious",
)


@dataclass(frozen=True)
class Assessment:
    """What the service needs to decide whether to show the emergency numbers."""

    emergency: bool
    # Sorted, unique category ids; empty when not an emergency.
    categories: tuple[str, ...]
    # The matched phrases exactly as written (slices of the original text), in reading order.
    phrases: tuple[str, ...]

    @property
    def suicidal(self) -> bool:
        """True when 3114 (suicide prevention) must be shown alongside 15 and 112."""
        return "suicidal" in self.categories


@dataclass(frozen=True)
class Finding:
    """One rule match and what became of it, for reviewers and tests (see `explain`)."""

    rule: str
    category: str
    phrase: str
    # "fired", "context" (what a context rule relied on), "negated", "no context",
    # or "suppressed by <suppressor id>".
    status: str


@dataclass(frozen=True)
class _Rule:
    id: str
    category: str
    exempt: frozenset[str]
    has_context: bool
    # Co-occurrence rules ("together"): each combination is a tuple of concept ids that must all
    # be found, not negated, in one sentence within `window` words of each other.
    combos: tuple[tuple[int, ...], ...] = ()
    window: int = 0
    # "alongside" rules add their category when a rule of one of these categories fired and the
    # rule's context is found (in the same sentence as that match, unless `anywhere`).
    alongside: frozenset[str] = frozenset()
    anywhere: bool = False
    # Co-occurrences may span this many sentences ("Il est tombé. Il ne se relève pas.").
    span: int = 0


@dataclass(frozen=True)
class _Suppressor:
    id: str
    kind: str
    # How many words before the match it reaches; None means its whole clause (or sentence).
    reach: int | None
    sentence: bool = False
    # Categories it applies to; empty means all.
    only: frozenset[str] = frozenset()


class _Lexicon:
    """lexicon.toml, compiled."""

    def __init__(self, data: dict[str, Any]) -> None:
        settings, negation, normalise = data["settings"], data["negation"], data["normalise"]
        self.sets = {name: list(entries) for name, entries in data["sets"].items()}
        self.expansions: dict[str, Any] = {}
        reaches = {"phrase": settings["phrase_reach"], "near": settings["near_reach"]}
        self.negation_window: int = settings["negation_window"]
        self.coordinator_reach: int = settings["coordinator_reach"]
        self.acute_overrides = frozenset(settings["acute_overrides"])
        self.cues = _folded(negation["cues"])
        self.cues_needing_ne = _folded(negation["cues_needing_ne"])
        self.ne = _folded(negation["ne"])
        self.fillers = _folded(negation["fillers"])
        self.coordinators = _folded(negation["coordinators"])
        self.after_ne = _folded(negation["after_ne"])
        self.rules: list[_Rule] = []
        self.suppressors: list[_Suppressor] = []
        self.matcher = Matcher()
        # Concepts of co-occurrence rules, shared between rules: source -> id.
        self.concepts: dict[str, int] = {}
        for index, rule in enumerate(data["rule"]):
            if rule["category"] not in CATEGORIES:
                raise ValueError(f"rule {rule['id']}: unknown category {rule['category']!r}")
            if not any(rule.get(key) for key in ("patterns", "together", "alongside")):
                raise ValueError(f"rule {rule['id']}: needs patterns, together or alongside")
            context = rule.get("context", [])
            exempt = frozenset(rule.get("exempt", []))
            combos = tuple(self._combo(rule["id"], combo) for combo in rule.get("together", []))
            window = rule.get("window", settings["together_window"])
            alongside = frozenset(rule.get("alongside", []))
            if not alongside <= set(CATEGORIES) or (alongside and not context):
                raise ValueError(f"rule {rule['id']}: alongside needs context and categories")
            anywhere = rule.get("anywhere", False)
            span = rule.get("span", 0)
            entry = (exempt, bool(context), combos, window, alongside, anywhere, span)
            self.rules.append(_Rule(rule["id"], rule["category"], *entry))
            self._add(rule.get("patterns", []), ("rule", index))
            self._add(context, ("context", index))
        for index, entry in enumerate(data["suppressor"]):
            scope = entry["scope"]
            if scope not in ("clause", "sentence", *reaches):
                raise ValueError(f"suppressor {entry['id']}: unknown scope {scope!r}")
            reach = None if scope in ("clause", "sentence") else reaches[scope]
            only = frozenset(entry.get("only", []))
            if not only <= set(CATEGORIES):
                raise ValueError(f"suppressor {entry['id']}: unknown category in {only}")
            self.suppressors.append(
                _Suppressor(entry["id"], entry["kind"], reach, scope == "sentence", only)
            )
            self._add(entry["patterns"], ("suppressor", index))
            # Red flags that keep the match alive when found in its sentence.
            self._add(entry.get("unless", []), ("unless", index))
        for index, entry in enumerate(data["acute"]):
            self._add(entry["patterns"], ("acute", index))
        self.normaliser = Normaliser(
            rewrites=normalise["rewrites"],
            units=normalise["units"],
            clause_words=normalise["clause_words"],
            known_words=self.matcher.words | set(normalise["spelling_vocabulary"]),
            stems=self.matcher.stems,
            fuzzy_min_length=settings["fuzzy_min_length"],
        )

    def _combo(self, rule_id: str, combo: str) -> tuple[int, ...]:
        """ "@chest & @pain": the concept ids of one combination, each concept compiled once."""
        ids: list[int] = []
        for source in (part.strip() for part in combo.split("&")):
            if source not in self.concepts:
                self.concepts[source] = len(self.concepts)
                self._add([source], ("concept", self.concepts[source]))
            ids.append(self.concepts[source])
        if len(ids) < 2:
            raise ValueError(f"rule {rule_id}: {combo!r} needs two concepts joined by '&'")
        return tuple(ids)

    def _add(self, patterns: Iterable[str], owner: tuple[str, int]) -> None:
        for source in patterns:
            try:
                self.matcher.add(Pattern(source, self.sets, self.expansions), owner)
            except (ValueError, KeyError) as error:
                raise ValueError(f"lexicon {owner}: bad pattern {source!r}: {error}") from error


def _folded(words: Iterable[str]) -> frozenset[str]:
    return frozenset(word for entry in words for word in plain_words(entry))


_LEXICON = _Lexicon(tomllib.loads(LEXICON_PATH.read_text(encoding="utf-8")))


def _in_clause(tokens: Sequence[Token], index: int, clause: int) -> bool:
    return index < len(tokens) and tokens[index].clause == clause


def _findings(text: str) -> list[tuple[Finding, tuple[int, int]]]:
    lexicon = _LEXICON
    tokens = lexicon.normaliser.tokens(text)
    hits = lexicon.matcher.hits(tokens)
    scopes = Scopes(tokens, hits, lexicon)
    contexts: dict[int, list[Hit]] = {}
    concepts: dict[int, list[Hit]] = {}
    # A negation carries over the noun phrase: in "pas de douleur thoracique" and "no chest
    # pain", the concept right after a negated one is negated too.
    carried: set[int] = set()
    negated: dict[tuple[int, int], bool] = {}  # many concepts share a span
    for hit in hits:
        if hit.owner[0] not in ("context", "concept"):
            continue
        span = (hit.start, hit.end)
        if span not in negated:
            negated[span] = is_negated(tokens, hit, lexicon)
        if hit.start in carried or negated[span]:
            clause = tokens[hit.end - 1].clause
            carried.update(i for i in (hit.end, hit.end + 1) if _in_clause(tokens, i, clause))
            continue
        found = contexts if hit.owner[0] == "context" else concepts
        found.setdefault(hit.owner[1], []).append(hit)
    results: list[tuple[Finding, tuple[int, int]]] = []
    seen: set[tuple[str, int, int]] = set()
    combos = [
        (("rule", i), rule.combos, rule.window, rule.span) for i, rule in enumerate(lexicon.rules)
    ]
    for hit in [*hits, *co_occurrences(tokens, concepts, combos)]:
        if hit.owner[0] != "rule":
            continue
        rule = lexicon.rules[hit.owner[1]]
        span = (tokens[hit.start].start, tokens[hit.end - 1].end)
        if (rule.id, *span) in seen:
            continue
        seen.add((rule.id, *span))
        status = "fired"
        if is_negated(tokens, hit, lexicon):
            status = "negated"
        elif suppressor := scopes.suppressor(hit, rule):
            status = f"suppressed by {suppressor}"
        elif rule.has_context and not contexts.get(hit.owner[1]):
            status = "no context"
        results.append((Finding(rule.id, rule.category, text[span[0] : span[1]], status), span))
        if status == "fired":
            for context in contexts.get(hit.owner[1], ()):
                context_span = (tokens[context.start].start, tokens[context.end - 1].end)
                phrase = text[context_span[0] : context_span[1]]
                results.append((Finding(rule.id, rule.category, phrase, "context"), context_span))
    return results + _alongside(text, tokens, results, contexts, lexicon)


def _alongside(
    text: str,
    tokens: Sequence[Token],
    results: list[tuple[Finding, tuple[int, int]]],
    contexts: dict[int, list[Hit]],
    lexicon: _Lexicon,
) -> list[tuple[Finding, tuple[int, int]]]:
    """Findings of the "alongside" rules: an emergency of another category found together with
    the rule's context, e.g. any emergency in a child is also a child in danger."""
    fired = [(f.category, span) for f, span in results if f.status == "fired"]
    if not fired:
        return []
    sentence_at = {token.start: token.sentence for token in tokens}
    found: list[tuple[Finding, tuple[int, int]]] = []
    for index, rule in enumerate(lexicon.rules):
        if not rule.alongside or not contexts.get(index):
            continue
        sentences = {sentence_at[s[0]] for c, s in fired if c in rule.alongside}
        if not sentences:
            continue
        for hit in contexts[index]:
            # The context may be in the sentence before or after: "C'est pour ma fille. Elle a
            # avalé des cachets."
            sentence = tokens[hit.start].sentence
            if rule.anywhere or sentences & {sentence - 1, sentence, sentence + 1}:
                span = (tokens[hit.start].start, tokens[hit.end - 1].end)
                finding = Finding(rule.id, rule.category, text[span[0] : span[1]], "fired")
                found.append((finding, span))
    return found


def explain(text: str) -> tuple[Finding, ...]:
    """Every rule match in `text` and why it fired or not, in reading order."""
    return tuple(finding for finding, _ in sorted(_findings(text), key=lambda f: f[1]))


def assess(text: str) -> Assessment:
    """Assess one patient message; `emergency` is True when any rule fires."""
    fired = [(f, span) for f, span in _findings(text) if f.status in ("fired", "context")]
    if not fired:
        return Assessment(emergency=False, categories=(), phrases=())
    # Reading order; a phrase inside a longer matched phrase adds nothing for the reader.
    phrases: list[tuple[int, int]] = []
    for start, end in sorted({span for _, span in fired}, key=lambda s: (s[0], -s[1])):
        if not phrases or end > phrases[-1][1]:
            phrases.append((start, end))
    return Assessment(
        emergency=True,
        categories=tuple(sorted({finding.category for finding, _ in fired})),
        phrases=tuple(text[start:end] for start, end in phrases),
    )
