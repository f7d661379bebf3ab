"""The detector's contract, and its robustness to the way patients actually write.

A missed emergency is the worst failure: most groups below pair wording that must stand down
(negated, past, idiomatic...) with close wording that must still fire.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from workers.triage.detector import CATEGORIES, Assessment, assess, explain


def categories(text: str) -> tuple[str, ...]:
    return assess(text).categories


def assert_fires(text: str, category: str) -> None:
    found = categories(text)
    assert category in found, f"{text!r}: expected {category}, got {found}; {explain(text)}"


def assert_quiet(text: str) -> None:
    assessment = assess(text)
    assert not assessment.emergency, f"{text!r} flagged {assessment}; {explain(text)}"


# ---------------------------------------------------------------- the contract
def test_emergency_assessment_shape() -> None:
    text = "Bonjour. J'ai une DOULEUR dans la Poitrine et je n'arrive plus à respirer !"
    assessment = assess(text)
    assert assessment == Assessment(
        emergency=True,
        categories=("breathing", "cardiac"),
        phrases=("DOULEUR dans la Poitrine", "n'arrive plus à respirer"),
    )


def test_phrases_are_slices_of_the_original_in_reading_order() -> None:
    text = "mon bébé de 6 semaines a 38,5 de fièvre\net ses lèvres sont BLEUES"
    assessment = assess(text)
    positions = [text.index(phrase) for phrase in assessment.phrases]
    assert assessment.phrases and positions == sorted(positions)
    assert all(phrase in text for phrase in assessment.phrases)


def test_categories_are_sorted_and_unique() -> None:
    found = categories("j'ai pris toutes mes boîtes de médicaments, je veux mourir, je veux mourir")
    assert found == ("poisoning", "suicidal")


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "Merci docteur, bonne journée"])
def test_no_emergency_is_empty(text: str) -> None:
    assert assess(text) == Assessment(emergency=False, categories=(), phrases=())


def test_assessment_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        assess("je veux mourir").emergency = False  # type: ignore[misc]


def test_category_ids() -> None:
    assert set(CATEGORIES) == {
        "cardiac", "stroke", "breathing", "unconscious", "seizure", "bleeding", "anaphylaxis",
        "suicidal", "poisoning", "child_danger", "pregnancy", "burns", "trauma", "headache",
        "hypoglycaemia",
    }  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "je veux mourir",
        "envie d'en finir",
        "je vais me suicider",
        "je vais me tuer",
        "plus envie de vivre",
        "j'ai pris toutes mes boites de médicaments",
        "je me scarifie",
        "j'ai envie de me faire du mal",
        "I want to kill myself",
        "I'm going to end my life",
    ],
)
def test_suicidal_property(text: str) -> None:
    assert assess(text).suicidal, explain(text)


@pytest.mark.parametrize("text", ["je me tue au travail", "ce formulaire me tue", "mal au dos"])
def test_not_suicidal(text: str) -> None:
    assert not assess(text).suicidal


def test_explain_tells_why() -> None:
    statuses = {f.rule: f.status for f in explain("pas de douleur thoracique")}
    assert statuses == {"cardiac.chest_pain": "negated"}
    past = explain("J'ai fait un AVC il y a 5 ans, je renouvelle mon traitement")
    assert [f.status for f in past] == ["suppressed by past.years_ago"]


# ---------------------------------------------------------------- robustness
@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("DOULEUR A LA POITRINE", "cardiac"),
        ("Ma mère ne se réveille pas", "unconscious"),
        ("ma mere ne se reveille pas", "unconscious"),
        ("mal au cœur, ça serre", "cardiac"),
        ("mal au coeur, ça serre", "cardiac"),
        ("ENCEINTE ET JE SAIGNE", "pregnancy"),
    ],
)
def test_case_and_accents(text: str, category: str) -> None:
    assert_fires(text, category)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("douleur poi\u00adtrine", "cardiac"),
        ("douleur poi\u200btrine", "cardiac"),
        ("ｄｏｕｌｅｕｒ ｐｏｉｔｒｉｎｅ", "cardiac"),
        ("jʼai mal à la poitrine", "cardiac"),
        ("j’ai mal à la poitrine", "cardiac"),
    ],
)
def test_unicode_variants(text: str, category: str) -> None:
    assert_fires(text, category)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("jarrive pa a respiré", "breathing"),
        ("g tres mal a la poitrine", "cardiac"),
        ("jpeux plu respirer", "breathing"),
        ("mal o coeur sa serre", "cardiac"),
        ("jveux plus vivre", "suicidal"),
        ("bb de 2 mois tjs de la fievre", "child_danger"),
        ("ma femme a fait un malaise elle repond pu", "unconscious"),
        ("g pa pu respiré de la nuit", "breathing"),
    ],
)
def test_sms_style(text: str, category: str) -> None:
    assert_fires(text, category)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("douleuuuur poitrine", "cardiac"),
        ("aidezzz moi je respire pluuus", "breathing"),
        ("j'étouuuuffe", "breathing"),
        ("il convulseeee", "seizure"),
        ("je veuuux mourirrr", "suicidal"),
    ],
)
def test_repeated_letters(text: str, category: str) -> None:
    assert_fires(text, category)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("douleur toracique", "cardiac"),
        ("mal a la poitirne", "cardiac"),
        ("il a perdu conaissance", "unconscious"),
        ("je suis enseinte et je saigne", "pregnancy"),
        ("il fait des convultions", "seizure"),
        ("crise d'epilepcie", "seizure"),
    ],
)
def test_common_misspellings(text: str, category: str) -> None:
    assert_fires(text, category)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("j'ai une douleur\ndans la poitrine", "cardiac"),
        ("mon bébé\nne respire plus", "child_danger"),
        ("Bonjour\r\nje n'arrive\r\nplus à respirer\r\n", "breathing"),
        ("Je suis enceinte de 32 SA.\n\nDepuis ce matin le bébé bouge moins.", "pregnancy"),
    ],
)
def test_line_breaks(text: str, category: str) -> None:
    assert_fires(text, category)


def test_line_breaks_keep_negation_local() -> None:
    assert_fires("pas de fièvre\ndouleur dans la poitrine qui serre", "cardiac")


@pytest.mark.parametrize(
    "text", ["mon mari a une douleur... dans la poitrine", "j'ai mal… à la poitrine"]
)
def test_an_ellipsis_is_a_pause(text: str) -> None:
    assert_fires(text, "cardiac")


def test_an_ellipsis_keeps_negation_local() -> None:
    assert_fires("pas de fièvre... douleur dans la poitrine", "cardiac")


@pytest.mark.parametrize(
    ("text", "category"),
    [
        (
            "Bonjour docteur, je vous écris pour le renouvellement de mon traitement : Kardegic "
            "75, Bisoprolol 2,5 et Tahor 20, pour trois mois. La pharmacie du centre peut le "
            "préparer si vous envoyez l'ordonnance. Au fait depuis une heure j'ai une douleur "
            "dans la poitrine qui serre et qui ne passe pas. Merci beaucoup, bonne journée.",
            "cardiac",
        ),
        (
            "Pourriez-vous me renvoyer l'attestation pour la mutuelle et me dire si mes "
            "résultats de prise de sang sont arrivés? ma fille de 2 ans vient d'avaler une pile "
            "bouton de la télécommande. Je vous remercie.",
            "poisoning",
        ),
    ],
)
def test_alarming_sentence_buried_in_a_long_message(text: str, category: str) -> None:
    assert_fires(text, category)


@pytest.mark.parametrize(
    "text",
    [
        "pas de douleur thoracique",
        "je n'ai pas mal à la poitrine",
        "aucune difficulté à respirer",
        "chute hier sans perte de connaissance",
        "no chest pain",
        "the patient denies any chest pain",
        "no chest pain or shortness of breath",
        "il ne saigne pas",
        "je n'ai plus mal à la poitrine",
        "pas de douleur dans la poitrine ni d'essoufflement",
        "il n'a pas perdu connaissance",
    ],
)
def test_negation(text: str) -> None:
    assert_quiet(text)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("pas de fièvre mais une douleur dans la poitrine qui serre", "cardiac"),
        ("pas de fièvre, douleur dans la poitrine", "cardiac"),
        ("je ne sais pas quoi faire, mon bébé ne respire plus", "child_danger"),
        ("je ne sais pas quoi faire mon bébé ne respire plus", "child_danger"),
        ("j'ai de plus en plus de mal à respirer", "breathing"),
        ("no fever but crushing chest pain", "cardiac"),
        ("je n'arrive pas à respirer", "breathing"),
        ("il ne se réveille pas", "unconscious"),
    ],
)
def test_negation_stays_local(text: str, category: str) -> None:
    assert_fires(text, category)


@pytest.mark.parametrize(
    "text",
    [
        "j'ai fait un AVC il y a 5 ans, je renouvelle mon traitement",
        "mon infarctus de 2019, le cardiologue demande un bilan",
        "l'an dernier j'ai eu une crise d'épilepsie, je voudrais renouveler",
        "Il y a 2 ans, j'ai fait un choc anaphylactique, puis-je prendre de l'amoxicilline ?",
        "quand j'étais petit je faisais des convulsions",
        "autrefois je me scarifiais",
        "I had a heart attack in 2018, renewal please",
        "j'ai déjà eu une crise convulsive, faut-il un EEG ?",
    ],
)
def test_past_and_resolved_events(text: str) -> None:
    assert_quiet(text)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("il a perdu connaissance il y a 10 minutes", "unconscious"),
        ("douleur dans la poitrine depuis 20 minutes", "cardiac"),
        ("je saigne beaucoup depuis hier soir", "bleeding"),
        ("mon infarctus de 2019 et depuis ce matin douleur dans la poitrine", "cardiac"),
        ("j'ai fait un AVC il y a 5 ans. Là je ne sens plus mon bras", "stroke"),
    ],
)
def test_recent_events_stay_acute(text: str, category: str) -> None:
    assert_fires(text, category)


@pytest.mark.parametrize(
    "text",
    [
        "ce formulaire me tue",
        "je meurs de faim",
        "je meurs d'envie de partir en vacances",
        "tu me tues",
        "mort de rire",
        "ça me saoule à mourir",
        "j'ai le coeur brisé",
        "my back is killing me lol",
        "je me tue au travail",
        "on étouffe dans ce bureau",
    ],
)
def test_idioms(text: str) -> None:
    assert_quiet(text)


@pytest.mark.parametrize(
    "text",
    [
        "c'est urgent pour mon arrêt de travail",
        "urgent : renouvellement",
        "URGENT !!! la mutuelle attend la feuille de soins",
        "C'est une urgence, je n'ai plus de pilule",
    ],
)
def test_administrative_urgency(text: str) -> None:
    assert_quiet(text)


@pytest.mark.parametrize(
    "text",
    [
        "quels sont les signes d'un AVC ?",
        "comment reconnaître une crise cardiaque ?",
        "what are the symptoms of a stroke?",
        "que faire si mon fils fait une crise d'épilepsie à l'école ?",
        "la pilule augmente-t-elle le risque d'AVC ?",
    ],
)
def test_general_information_questions(text: str) -> None:
    assert_quiet(text)


@pytest.mark.parametrize(
    "text",
    [
        "mon père a fait un infarctus à 50 ans, dois-je faire un bilan ?",
        "ma mère est décédée d'un AVC, est-ce héréditaire ?",
        "my mother had a stroke at 60, should I be screened?",
    ],
)
def test_family_history(text: str) -> None:
    assert_quiet(text)


@pytest.mark.parametrize(
    "text",
    [
        "renouvellement de ma ventoline",
        "stylo d'adrénaline à renouveler",
        "Renewal of my EpiPen please",
        "pouvez-vous me represcrire de la trinitrine ?",
    ],
)
def test_emergency_drugs_by_name(text: str) -> None:
    assert_quiet(text)


def test_adrenaline_used_is_an_emergency() -> None:
    assert_fires("j'ai utilisé mon stylo d'adrénaline, ma gorge gonfle", "anaphylaxis")


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("no puedo respirar", "breathing"),
        ("tengo un dolor muy fuerte en el pecho", "cardiac"),
        ("dor no peito", "cardiac"),
        ("não consigo respirar", "breathing"),
        ("3andi wja3 kbir f sder", "cardiac"),
        ("ma3andich nefs", "breathing"),
    ],
)
def test_other_languages(text: str, category: str) -> None:
    assert_fires(text, category)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("mon bébé ne respire plus", "child_danger"),
        ("nourrisson fièvre 3 semaines", "child_danger"),
        ("bébé tout mou", "child_danger"),
        ("mon nourrisson ne se réveille pas", "child_danger"),
        ("mon fils a les lèvres bleues", "breathing"),
        ("mon fils a avalé des piles", "poisoning"),
        ("mon fils a avalé une pile bouton", "poisoning"),
        ("mon fils a bu de l'eau de javel", "poisoning"),
        ("mon fils a avalé des médicaments de sa grand-mère", "poisoning"),
        ("mon bébé convulse", "seizure"),
        ("des taches qui ne s'effacent pas et de la fièvre", "child_danger"),
        ("enceinte de 30 semaines, je saigne", "pregnancy"),
        ("je perds les eaux à 30 semaines", "pregnancy"),
        ("enceinte, je ne sens plus le bébé bouger", "pregnancy"),
        ("enceinte, mal de tête très fort et je vois des taches", "pregnancy"),
        ("mon père est diabétique, il est tout confus", "hypoglycaemia"),
        ("hypo, il est confus", "hypoglycaemia"),
        ("glycémie à 0,4", "hypoglycaemia"),
        ("chute, ne peut pas se relever", "trauma"),
        ("elle est tombée et n'arrive pas à se relever", "trauma"),
        ("accident de voiture", "trauma"),
        ("fracture ouverte", "trauma"),
        ("coup à la tête et il vomit", "trauma"),
        ("le pire mal de tête de ma vie", "headache"),
        ("mal de tête brutal en coup de tonnerre", "headache"),
        ("céphalée brutale", "headache"),
    ],
)
def test_wording_from_the_brief(text: str, category: str) -> None:
    assert_fires(text, category)


def test_invariants_on_random_text() -> None:
    pieces = [
        "douleur", "poitrine", "pas", "de", "ne", "plus", "respire", "bébé", "il y a", "5 ans",
        "enceinte", "saigne", "beaucoup", "je", "veux", "mourir", "38,5", "semaines", ",", ".",
        "\n", "?", "é", "ʼ", "\u200b", "😂", "'", "mais", "et", "ni", "no", "chest", "pain",
    ]  # fmt: skip
    generator = random.Random(20)
    for _ in range(300):
        text = "".join(generator.choice(pieces) + generator.choice(["", " "]) for _ in range(40))
        assessment = assess(text)
        assert assessment.emergency == bool(assessment.categories) == bool(assessment.phrases)
        assert list(assessment.categories) == sorted(set(assessment.categories))
        assert set(assessment.categories) <= set(CATEGORIES)
        position = 0
        for phrase in assessment.phrases:
            position = text.index(phrase, position)
