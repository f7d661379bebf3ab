"""Normalised patient text, and the word patterns of the lexicon matched against it.

Patients write on phones, often in distress: no accents, SMS spellings ("jarrive pa"), repeated
letters ("douleuuur"), typos, little punctuation. Matching runs on a sequence of plain tokens;
each token keeps its span in the original text so that matched phrases are quoted back exactly as
the patient wrote them.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

# Letters that NFKD leaves whole although patients type them (œ in "cœur" on French keyboards,
# Turkish dotless ı, Polish ł, Nordic ø).
_LIGATURES = str.maketrans(
    {"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss", "ı": "i", "ł": "l", "Ł": "l", "ø": "o"}
)
# A number with its decimal part kept whole ("38,5", "0.4"), or a run of letters and digits
# (Arabic written in Latin letters uses digits as letters: "wja3"). Invisible characters pasted
# inside a word (soft hyphen, zero-width space) do not split it; the apostrophe-like modifier
# letter "ʼ" does, like "'".
_INVISIBLE = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
_LETTER = r"[^\W_\u02bc]"
_TOKEN = re.compile(rf"\d+(?:[.,]\d+)?(?!{_LETTER})|{_LETTER}(?:{_LETTER}|[{_INVISIBLE}])*")
_SENTENCE_BREAK = re.compile(r"[.!?;]|\n\s*\n")
# "j'ai mal... à la poitrine": an ellipsis is a pause more often than an end, so only a clause
# break (patterns span it; negation and past-time markers stop at it).
_ELLIPSIS = re.compile(r"\.{2,}|…")
# A single line break is only a clause break: phones wrap and patients press Enter mid-sentence.
_CLAUSE_BREAK = re.compile(r"[,:()\[\]\n\"«»–—]|\s-\s")
_REPEATED_LETTER = re.compile(r"([a-z])\1+")
_NUMBER_THEN_UNIT = re.compile(r"(\d+)([a-z]+)")
_NUMBER = r"\d+(?:[.,]\d+)?"
# Bounds the per-process memos; real messages reuse a few thousand words.
_CACHE_LIMIT = 50_000


class Token(NamedTuple):
    """One normalised word; `start`/`end` slice the original text it came from."""

    text: str
    start: int
    end: int
    sentence: int
    clause: int


class Hit(NamedTuple):
    """A pattern match: its owner (as given to `Matcher.add`) and its tokens, end exclusive."""

    owner: tuple[str, int]
    start: int
    end: int


def _strip(word: str) -> str:
    if word.isascii():
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word.translate(_LIGATURES))
    kept = (c for c in decomposed if not unicodedata.combining(c) and c not in _INVISIBLE)
    return "".join(kept).lower()


def _squeeze(word: str) -> str:
    return _REPEATED_LETTER.sub(r"\1", word)


def fold(word: str) -> str:
    """Lower case without accents or repeated letters: "Douleuuur" and "douleur" become one."""
    return _squeeze(_strip(word))


def plain_words(text: str) -> list[str]:
    """Folded words of a lexicon entry ("n'arrive" gives "n", "arive"), without rewriting."""
    return [fold(match) for match in _TOKEN.findall(text)]


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class Normaliser:
    """Normalises patient text with the lexicon's SMS rewrites, units and known words."""

    def __init__(
        self,
        rewrites: Mapping[str, str],
        units: Iterable[str],
        clause_words: Iterable[str],
        known_words: Iterable[str],
        stems: Iterable[str],
        fuzzy_min_length: int,
    ) -> None:
        # Looked up as typed, then squeezed: "jaiii" is "jai", but "t" (from "can't") is not "tt".
        self._rewrites = {_strip(key): tuple(plain_words(value)) for key, value in rewrites.items()}
        self._units = {fold(unit) for unit in units}
        self._clause_words = {fold(word) for word in clause_words}
        self._fuzzy_min_length = fuzzy_min_length
        self._known = {fold(word) for word in known_words}
        self._stems = {fold(stem) for stem in stems}
        self._stem_lengths = sorted({len(stem) for stem in self._stems})
        # Corrections only go towards words longer than the shortest corrected typo, so that a
        # short everyday word is never "corrected" into a medical one.
        targets = {word for word in self._known if len(word) > fuzzy_min_length}
        self._targets = targets
        # One-letter deletions of every target: a typo (one letter missing, extra, wrong or
        # swapped) then costs a few dictionary look-ups. Ambiguous deletions map to "".
        self._near: dict[str, str] = {}
        for word in targets:
            for deleted in _deletions(word):
                if self._near.setdefault(deleted, word) != word:
                    self._near[deleted] = ""
        self._cache: dict[str, tuple[str, ...]] = {}

    def forms(self, raw: str) -> tuple[str, ...]:
        """The normalised token(s) of one raw word ("jai" gives "j", "ai"); memoised."""
        cached = self._cache.get(raw)
        if cached is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            cached = self._cache[raw] = self._compute_forms(raw)
        return cached

    def _compute_forms(self, raw: str) -> tuple[str, ...]:
        typed = _strip(raw)
        if typed in self._rewrites:
            return self._rewrites[typed]
        word = _squeeze(typed)
        split = _NUMBER_THEN_UNIT.fullmatch(word) if word[:1].isdigit() else None
        if split and split.group(2) in self._units:
            # "30sa", "2mois", "10min": the number and its unit are two words.
            return (split.group(1), *self.forms(split.group(2)))
        if word in self._rewrites:
            return self._rewrites[word]
        return (self._correct(word),)

    def _correct(self, word: str) -> str:
        """The known word one typo away from `word` ("toracique" gives "thoracique"), if any."""
        if len(word) < self._fuzzy_min_length or word in self._known or not word.isalpha():
            return word
        if any(word[:size] in self._stems for size in self._stem_lengths):
            return word
        candidates = [self._near.get(word, "")]
        for deleted in _deletions(word):
            candidates.append(deleted if deleted in self._targets else "")
            candidates.append(self._near.get(deleted, ""))
        found = {c for c in candidates if c and c[0] == word[0]}
        return found.pop() if len(found) == 1 else word

    def tokens(self, text: str) -> list[Token]:
        """Tokens of `text` numbered by sentence (pattern scope) and clause (negation scope)."""
        tokens: list[Token] = []
        sentence = clause = 0
        previous_end = 0
        for match in _TOKEN.finditer(text):
            start, end = match.span()
            gap = text[previous_end:start]
            previous_end = end
            if tokens and gap != " ":
                gap = _ELLIPSIS.sub(",", gap)
                if _SENTENCE_BREAK.search(gap):
                    sentence += 1
                    clause += 1
                elif _CLAUSE_BREAK.search(gap):
                    clause += 1
            for form in self.forms(match.group()):
                if tokens and form in self._clause_words:
                    clause += 1
                tokens.append(Token(form, start, end, sentence, clause))
        return tokens


# ---------------------------------------------------------------- the pattern language
# word        the word, accents and case ignored     respir*   any word starting with "respir"
# {a b|c}     either sequence                        [a|b c]   optional, same inside
# ..3         up to 3 words of the same sentence     #         a number ("38,5")
# @name       any entry of the named set             /re/      a regular expression for one word
_SYNTAX = re.compile(r"\{|\}|\[|\]|\||\.\.\d*|/[^/\s]+/|@\w+|#|[^\s{}\[\]|]+")
_DEFAULT_GAP = 3
# A pattern's possible first words, as ("word" | "prefix" | "regex", text).
_First = set[tuple[str, str]]


class _Expansion(NamedTuple):
    regex: str
    first: _First
    words: set[str]
    stems: set[str]


class Pattern:
    """One lexicon pattern compiled to a regex over the tokens joined by spaces.

    `expansions` memoises each set's compiled entries across the patterns of one lexicon.
    """

    def __init__(
        self,
        source: str,
        sets: Mapping[str, Sequence[str]],
        expansions: dict[str, _Expansion] | None = None,
    ) -> None:
        self.source = source
        self._sets = sets
        self._expansions = {} if expansions is None else expansions
        # Every literal word and prefix stem, so that the typo corrector leaves them alone.
        self.words: set[str] = set()
        self.stems: set[str] = set()
        self._items = _SYNTAX.findall(source)
        self._at = 0
        regex, self.first, nullable = self._sequence(closers=())
        if self._at != len(self._items):
            raise ValueError(f"unbalanced brackets in pattern {source!r}")
        if nullable or self._items[-1].startswith(".."):
            raise ValueError(f"pattern {source!r} may match nothing or ends with a gap")
        self.regex = re.compile(regex)

    def _sequence(self, closers: tuple[str, ...]) -> tuple[str, _First, bool]:
        parts: list[str] = []
        first: _First = set()
        nullable = True
        while self._at < len(self._items) and self._items[self._at] not in closers:
            item = self._items[self._at]
            self._at += 1
            if item.startswith("..") and not parts:
                raise ValueError(f"pattern {self.source!r} starts a sequence with a gap")
            regex, item_first, item_nullable = self._item(item)
            parts.append(regex)
            if nullable:
                first |= item_first
                nullable = item_nullable
        return "".join(parts), first, nullable

    def _item(self, item: str) -> tuple[str, _First, bool]:
        if item in ("{", "["):
            closer = "}" if item == "{" else "]"
            options: list[str] = []
            first: _First = set()
            nullable = item == "["
            while True:
                regex, option_first, option_nullable = self._sequence(closers=("|", closer))
                options.append(regex)
                first |= option_first
                nullable = nullable or option_nullable
                if self._at >= len(self._items):
                    raise ValueError(f"unclosed {item!r} in pattern {self.source!r}")
                self._at += 1
                if self._items[self._at - 1] == closer:
                    break
            return "(?:" + "|".join(options) + ")" + ("?" if item == "[" else ""), first, nullable
        if item.startswith(".."):
            return f"(?:[^ ¶]+ ){{0,{int(item[2:] or _DEFAULT_GAP)}}}?", set(), True
        if item.startswith("@"):
            expansion = self._expansions.get(item)
            if expansion is None:
                nested = [Pattern(e, self._sets, self._expansions) for e in self._sets[item[1:]]]
                expansion = self._expansions[item] = _Expansion(
                    "(?:" + "|".join(pattern.regex.pattern for pattern in nested) + ")",
                    set().union(*(pattern.first for pattern in nested)),
                    set().union(*(pattern.words for pattern in nested)),
                    set().union(*(pattern.stems for pattern in nested)),
                )
            self.words |= expansion.words
            self.stems |= expansion.stems
            return expansion.regex, set(expansion.first), False
        if item == "#":
            return _NUMBER + " ", {("regex", _NUMBER)}, False
        if item.startswith("/"):
            return f"(?:{item[1:-1]}) ", {("regex", item[1:-1])}, False
        words = plain_words(item)
        if not words:
            raise ValueError(f"unexpected {item!r} in pattern {self.source!r}")
        prefix = item.endswith("*")
        self.words.update(words[:-1] if prefix else words)
        if prefix:
            self.stems.add(words[-1])
        regex = "".join(re.escape(word) + " " for word in words[:-1]) + re.escape(words[-1])
        first = ("prefix" if prefix and len(words) == 1 else "word", words[0])
        return regex + ("[^ ]* " if prefix else " "), {first}, False


class Matcher:
    """Finds every match of many patterns, trying at each word only those that can start there."""

    def __init__(self) -> None:
        self._patterns: list[tuple[re.Pattern[str], tuple[str, int]]] = []
        self._by_word: dict[str, list[int]] = {}
        self._by_prefix: dict[str, list[int]] = {}
        self._by_regex: dict[str, list[int]] = {}
        self._candidates: dict[str, tuple[int, ...]] = {}
        self._indexed = False
        self._prefix_lengths: list[int] = []
        self._regexes: list[tuple[re.Pattern[str], list[int]]] = []
        self.words: set[str] = set()
        self.stems: set[str] = set()

    def add(self, pattern: Pattern, owner: tuple[str, int]) -> None:
        index = len(self._patterns)
        self.words |= pattern.words
        self.stems |= pattern.stems
        self._patterns.append((pattern.regex, owner))
        tables = {"word": self._by_word, "prefix": self._by_prefix, "regex": self._by_regex}
        for kind, word in pattern.first:
            tables[kind].setdefault(word, []).append(index)
        self._candidates.clear()
        self._indexed = False

    def _candidates_for(self, word: str) -> tuple[int, ...]:
        """Patterns whose first word can be `word`; memoised, since words recur."""
        if not self._indexed:
            self._prefix_lengths = sorted({len(prefix) for prefix in self._by_prefix})
            self._regexes = [(re.compile(r), indices) for r, indices in self._by_regex.items()]
            self._indexed = True
        found = self._candidates.get(word)
        if found is None:
            if len(self._candidates) >= _CACHE_LIMIT:
                self._candidates.clear()
            candidates = set(self._by_word.get(word, ()))
            for size in self._prefix_lengths:
                candidates.update(self._by_prefix.get(word[:size], ()))
            for regex, indices in self._regexes:
                if regex.fullmatch(word):
                    candidates.update(indices)
            found = self._candidates[word] = tuple(sorted(candidates))
        return found

    def hits(self, tokens: Sequence[Token]) -> list[Hit]:
        """Every match starting at every token, in token order."""
        # Tokens joined by spaces; "¶" marks sentence breaks, which no gap or word can cross.
        parts: list[str] = []
        offsets: list[int] = []
        ends: dict[int, int] = {}
        length = 0
        for index, token in enumerate(tokens):
            if index and token.sentence != tokens[index - 1].sentence:
                parts.append("¶ ")
                length += 2
            offsets.append(length)
            parts.append(token.text + " ")
            length += len(token.text) + 1
            ends[length] = index + 1
        joined = "".join(parts)
        found: list[Hit] = []
        for index, token in enumerate(tokens):
            for candidate in self._candidates_for(token.text):
                regex, owner = self._patterns[candidate]
                match = regex.match(joined, offsets[index])
                if match:
                    found.append(Hit(owner, index, ends[match.end()]))
        return found


def co_occurrences(
    tokens: Sequence[Token],
    concepts: Mapping[int, list[Hit]],
    combos: Iterable[tuple[tuple[str, int], Iterable[tuple[int, ...]], int, int]],
) -> list[Hit]:
    """Hits of co-occurrence combinations: for each (owner, combinations, window, span), every
    concept of a combination found within `span` sentences of the rarest one (0: the same
    sentence) and within `window` words of it."""
    found: list[Hit] = []
    starts = {concept: [hit.start for hit in hits] for concept, hits in concepts.items()}
    for owner, owner_combos, window, span in combos:
        for combo in owner_combos:
            if not all(concept in concepts for concept in combo):
                continue
            anchor = min(combo, key=lambda concept: len(concepts[concept]))
            for hit in concepts[anchor]:
                sentence = tokens[hit.start].sentence
                low, high = hit.start, hit.end
                for concept in combo:
                    if concept == anchor:
                        continue
                    first = bisect.bisect_left(starts[concept], hit.start - window)
                    last = bisect.bisect_right(starts[concept], hit.start + window)
                    near = [
                        other
                        for other in concepts[concept][first:last]
                        if abs(tokens[other.start].sentence - sentence) <= span
                    ]
                    if not near:
                        break
                    best = min(near, key=lambda other: abs(other.start - hit.start))
                    low, high = min(low, best.start), max(high, best.end)
                else:
                    found.append(Hit(owner, low, high))
    return found
