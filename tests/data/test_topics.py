"""The lexicon topic classifier on hand-written questions, one or two per topic, and non-physics ones."""

from __future__ import annotations

import pytest

from physlora.config.schema import TOPICS
from physlora.data.topics import TOPIC_LEXICON, LexiconClassifier, get_classifier
from physlora.errors import ConfigError

PHYSICS = [
    ("A cyclist accelerates from rest to 12 m/s in 4 s. What is her average acceleration?", "kinematics"),
    ("How long does a stone in free fall take to drop 20 metres?", "kinematics"),
    ("What net force is needed to push a sled across ice when friction is negligible?", "dynamics"),
    ("According to Newton's third law, what does a rocket exert on its exhaust gases?", "dynamics"),
    ("A crane lifts a 10 kg box by 3 m. How much potential energy does the box gain?", "energy"),
    ("A 60 W lamp is switched on for an hour. How many joules does it use?", "energy"),
    ("Two carts collide and stick together. What is conserved in this inelastic collision?", "momentum"),
    ("What impulse does a bat give a ball?", "momentum"),
    ("Why does the entropy of an isolated system never decrease?", "thermodynamics"),
    ("How does heat move through a metal rod by conduction?", "thermodynamics"),
    ("What is the resistance of a circuit drawing 2 A from a 12 V battery?", "electromagnetism"),
    ("Which way does a compass needle point near a bar magnet?", "electromagnetism"),
    ("What causes the refraction of light at the surface of water?", "waves_optics"),
    ("What is the frequency of a sound wave with a wavelength of 0.5 m?", "waves_optics"),
    ("What is the energy of a photon with a wavelength of 500 nm?", "modern_physics"),
    ("A radioactive isotope decays to a quarter of its mass in 10 years. What is its half-life?", "modern_physics"),
    ("What torque does a 20 N force produce on a wrench 0.3 m long?", "mechanics"),
    ("What buoyant force acts on a block floating in water?", "mechanics"),
]

NON_PHYSICS = [
    "Which organelle produces energy for the cell?",
    "What type of chemical bond forms between sodium and chlorine?",
    "Which layer of the Earth lies directly beneath the crust?",
    "How do predators affect the population of their prey?",
    "Which gas do plants release during photosynthesis?",
    "What is the pH of a neutral solution at room temperature?",
]


@pytest.fixture(scope="module")
def classifier() -> LexiconClassifier:
    return LexiconClassifier()


@pytest.mark.parametrize(("question", "topic"), PHYSICS)
def test_physics_question_gets_topic(classifier, question, topic):
    result = classifier.classify(question)
    assert result.is_physics, result.scores
    assert result.topic == topic, result.scores


@pytest.mark.parametrize("question", NON_PHYSICS)
def test_non_physics_question_is_dropped(classifier, question):
    result = classifier.classify(question)
    assert not result.is_physics, result.scores


def test_question_outweighs_answer_outweighs_choices(classifier):
    in_question = classifier.classify("Which torque is it?").scores["mechanics"]
    in_answer = classifier.classify("Which is it?", choices=["torque", "mass"], answer="torque").scores["mechanics"]
    in_choice = classifier.classify("Which is it?", choices=["torque", "mass"], answer="mass").scores["mechanics"]
    assert in_question > in_answer > in_choice > 0


def test_no_keyword_gives_other(classifier):
    result = classifier.classify("Why is the sky blue?")
    assert result.topic == "other"
    assert not result.is_physics


def test_lexicon_topics_match_schema():
    assert (set(TOPIC_LEXICON) - {"general"}) | {"other"} == set(TOPICS)


def test_registry_rejects_unknown_name():
    assert isinstance(get_classifier("lexicon"), LexiconClassifier)
    with pytest.raises(ConfigError, match="unknown data.topic_classifier 'bert'"):
        get_classifier("bert")
