"""Where negations, suppressors and acute time markers apply in one message (see detector.py)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from workers.triage.normalise import Hit, Token

if TYPE_CHECKING:
    from workers.triage.detector import _Lexicon as Lexicon
    from workers.triage.detector import _Rule as Rule


def is_negated(tokens: Sequence[Token], hit: Hit, lexicon: Lexicon) -> bool:
    """Whether a negation governs the match: "pas de douleur", "no chest pain", "il ne saigne pas".

    Walks back from the match through filler words ("de", "any", "eu") within the clause, so
    that "pas de fièvre mais une douleur dans la poitrine" and "je ne sais pas quoi faire, mon
    bébé ne respire plus" stay alarming. A list coordinator ("ni", "or") carries the negation
    over a few more words: "no chest pain or shortness of breath".
    """
    clause = tokens[hit.start].clause
    steps = reach = 0
    index = hit.start - 1
    while index >= 0 and tokens[index].clause == clause and steps < lexicon.negation_window:
        word = tokens[index].text
        if word in lexicon.cues:
            if word not in lexicon.cues_needing_ne:
                return True
            nearby = tokens[max(0, index - 3) : index]
            return any(t.text in lexicon.ne and t.clause == clause for t in nearby)
        if word in lexicon.coordinators:
            reach = lexicon.coordinator_reach
        elif word not in lexicon.fillers:
            if reach == 0:
                break
            reach -= 1
        steps += 1
        index -= 1
    # "il ne saigne pas": "ne" just before the match and "pas" just after it.
    before = tokens[max(0, hit.start - 2) : hit.start]
    after = tokens[hit.end] if hit.end < len(tokens) else None
    return (
        any(t.text in lexicon.ne and t.clause == clause for t in before)
        and after is not None
        and after.clause == tokens[hit.end - 1].clause
        and after.text in lexicon.after_ne
    )


class Scopes:
    """Where the suppressors and acute time markers of one message apply (indexed, so that a
    long message costs no more than linear time)."""

    def __init__(self, tokens: Sequence[Token], hits: Iterable[Hit], lexicon: Lexicon) -> None:
        self._tokens = tokens
        self._lexicon = lexicon
        self._acute_clauses: set[int] = set()
        self._unless: set[tuple[int, int]] = set()  # (suppressor, sentence)
        self._by_clause: dict[int, dict[int, None]] = {}  # clause -> suppressors, in order
        self._nearby: list[Hit] = []  # phrase and near scope, by start
        sentences: dict[int, tuple[int, int]] = {}
        for token in tokens:
            low, _ = sentences.get(token.sentence, (token.clause, token.clause))
            sentences[token.sentence] = (low, token.clause)
        for hit in hits:
            first, last = tokens[hit.start].clause, tokens[hit.end - 1].clause
            if hit.owner[0] == "acute":
                self._acute_clauses.update(range(first, last + 1))
            elif hit.owner[0] == "unless":
                self._unless.add((hit.owner[1], tokens[hit.start].sentence))
            elif hit.owner[0] == "suppressor":
                entry = lexicon.suppressors[hit.owner[1]]
                if entry.sentence:
                    first = sentences[tokens[hit.start].sentence][0]
                    last = sentences[tokens[hit.end - 1].sentence][1]
                if entry.reach is None:
                    end = last if entry.sentence else self._last_governed(hit)
                    for clause in range(first, end + 1):
                        self._by_clause.setdefault(clause, {})[hit.owner[1]] = None
                else:
                    self._nearby.append(hit)
        self._nearby.sort(key=lambda hit: hit.start)
        self._starts = [hit.start for hit in self._nearby]
        self._longest = max((hit.end - hit.start for hit in self._nearby), default=0)
        self._farthest = max((s.reach or 0 for s in lexicon.suppressors), default=0)

    def _last_governed(self, hit: Hit) -> int:
        """The last clause a clause-scope suppressor governs.

        A marker that fills its whole clause is a fronted phrase ("Il y a 2 ans, j'ai fait un
        choc anaphylactique"): it governs the clause after its comma as well.
        """
        tokens = self._tokens
        first, last = tokens[hit.start].clause, tokens[hit.end - 1].clause
        starts_clause = hit.start == 0 or tokens[hit.start - 1].clause != first
        ends_clause = hit.end == len(tokens) or tokens[hit.end].clause != last
        continues = hit.end < len(tokens) and tokens[hit.end].sentence == tokens[hit.start].sentence
        return last + 1 if starts_clause and ends_clause and continues else last

    def suppressor(self, hit: Hit, rule: Rule) -> str | None:
        """The id of the suppressor that stands this match down (past, idiom, question...)."""
        tokens, lexicon = self._tokens, self._lexicon
        clauses = range(tokens[hit.start].clause, tokens[hit.end - 1].clause + 1)
        acute = any(clause in self._acute_clauses for clause in clauses)
        candidates = [index for clause in clauses for index in self._by_clause.get(clause, ())]
        low = bisect.bisect_left(self._starts, hit.start - self._farthest - self._longest)
        high = bisect.bisect_right(self._starts, hit.end)
        for other in self._nearby[low:high]:
            reach = lexicon.suppressors[other.owner[1]].reach or 0
            # Touching the match, or ending at most `reach` words before it, same sentence.
            if other.end + reach >= hit.start and (
                tokens[other.start].sentence == tokens[hit.start].sentence
            ):
                candidates.append(other.owner[1])
        for index in candidates:
            suppressor = lexicon.suppressors[index]
            if suppressor.only and rule.category not in suppressor.only:
                continue
            if (index, tokens[hit.start].sentence) in self._unless:
                continue
            overridden = acute and suppressor.kind in lexicon.acute_overrides
            if suppressor.kind not in rule.exempt and not overridden:
                return suppressor.id
        return None
