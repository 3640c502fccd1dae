"""Physics filter and topic tagging: a transparent weighted-keyword classifier behind a small interface.

Limits of the lexicon classifier: it reads words, not meaning. A question is physics when physics keywords
outweigh biology, chemistry and earth-science cues. So a physics question in everyday words with no keyword
("Why does a straw look bent in a glass of water?") is dropped. A biology question built on physics words
(nerve signals as electric currents) may be kept.
Shared words (energy, pressure, current, charge, nucleus) carry low weights or live only in longer phrases.
Topics overlap: the specific topics (kinematics, dynamics, energy, momentum) win ties over the broad
mechanics, which collects the rest of classical mechanics (gravity, rotation, machines, fluids).
The weights were tuned by reading samples of kept and dropped SciQ and ARC questions, not on a labelled set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

from physlora.errors import ConfigError


@dataclass(frozen=True)
class TopicResult:
    """Classifier output: physics or not, the best topic ('other' when no topic keyword fires), and the scores."""

    is_physics: bool
    topic: str
    scores: dict[str, float] = field(default_factory=dict)


class TopicClassifier(Protocol):
    """Anything that decides whether a question is physics and which topic it belongs to."""

    def classify(self, question: str, choices: Sequence[str] = (), answer: str = "") -> TopicResult: ...


# Regex fragments and their weights, matched case-insensitively where no ASCII letter precedes or follows
# (so "5m/s" and "Newton's" match). Longer phrases come first
# inside each group so that "kinetic energy" is counted once as a phrase, not again as "energy".
TOPIC_LEXICON: dict[str, dict[str, float]] = {
    # Physics in general: these count towards the physics score but never choose a topic.
    "general": {
        r"physics|physicists?|eigen\w*|hermitian|vectors?|scalars?": 2.5,
        r"radiation|magnitude|transformers?|harmonics?|spectral|rainbows?|barometers?": 1.5,
    },
    "kinematics": {
        r"kinematics?": 3, r"velocit(?:y|ies)": 2.5, r"accelerat\w*": 2.5, r"displacement": 2, r"projectiles?": 2.5,
        r"free[- ]fall\w*": 2.5, r"trajector(?:y|ies)": 2, r"m/s2?": 2.5, r"km/h|mph|miles per hour": 2,
        r"meters? per second": 2.5, r"average speed|constant speed|top speed": 2.5, r"speeds?(?! of light)": 1.5,
        r"distance[- ]time|speed[- ]time|velocity[- ]time": 3, r"motion": 1, r"moving|moves": 0.5,
        r"falls?|falling|dropped": 1, r"how far": 1, r"at rest": 1,
    },
    "dynamics": {
        r"net force|normal force|applied force|unbalanced forces?|balanced forces?": 3,
        r"newton'?s (?:first|second|third) law|laws of motion": 3, r"forces?": 2, r"newtons?": 2,
        r"friction\w*": 2.5, r"tension": 1.5, r"inertia": 2, r"air resistance|drag force": 2.5, r"centripetal": 2.5,
        r"push(?:es|ed|ing)?|pull(?:s|ed|ing)?": 1, r"mass": 1, r"weigh(?:t|s)": 1,
    },
    "energy": {
        r"kinetic energy|potential energy|mechanical energy|conservation of energy|energy conservation": 3.5,
        r"work done|work[- ]energy|work is done": 3, r"joules?|kilojoules?": 2.5, r"watts?|kilowatts?|horsepower": 2.5,
        r"power": 1, r"efficien\w*": 1, r"energy (?:transfer|transformation|conversion)s?": 1.5, r"energy": 1.5,
    },
    "momentum": {
        r"momentum|impulse": 3, r"inelastic": 3, r"elastic collisions?": 3, r"collisions?|collid\w*": 2,
        r"recoil\w*": 2.5,
    },
    "thermodynamics": {
        r"thermodynamics?|entropy|specific heat|latent heat|heat capacity|internal energy|heat engines?": 3.5,
        r"absolute zero|ideal gas|thermal expansion|thermal equilibrium|calorimet\w*": 3,
        r"heat(?:s|ed|ing)?|thermal": 2, r"temperatures?": 1.5, r"thermometers?": 2, r"kelvin": 2,
        r"degrees? (?:celsius|fahrenheit)|°[cf]": 1, r"conduction|convection": 2, r"insulat(?:ion|ors?|e|es|ed)": 1,
        r"melt\w*|freez\w*|boil\w*|evaporat\w*|condens\w*": 0.75, r"expand|expands|contracts?": 0.75,
    },
    "electromagnetism": {
        r"static electricity|electric (?:field|charge|current|circuit|potential)s?|electromagnet\w*": 3.5,
        r"voltages?|volts?|resistors?|circuits?|ohms?|capacit\w*|inductor\w*|inductance|coulombs?|amperes?|amps?": 3,
        r"electric\w*|magnet\w*": 2.5, r"batter(?:y|ies)": 2, r"conductors?": 2, r"generators?|motors?": 1.5,
        r"wires?|light bulbs?|bulbs?": 1.5, r"charged?|charges": 1.5, r"currents?": 1, r"compass(?:es)?": 1.5,
        r"resistance": 1, r"electrons?(?! ?volts?)": 0.5,
    },
    "waves_optics": {
        r"wavelengths?|refract\w*|diffract\w*|doppler|focal|transverse|longitudinal|polari[sz]\w*": 3,
        r"waves?|optic\w*|lens(?:es)?|interferen\w*": 2.5, r"frequenc(?:y|ies)|amplitude|vibrat\w*|hertz|hz": 2,
        r"sound|echo(?:es)?|pitch|decibels?|loudness": 2, r"reflect\w*|mirrors?|prisms?": 2,
        r"light": 1.5, r"shadows?|transparent|translucent|opaque": 2, r"spectrum|infrared|ultraviolet": 1.5,
        r"resonan\w*": 2, r"medium": 1,
    },
    "modern_physics": {
        r"quantum|photons?|photoelectric|relativity|relativistic|planck|de broglie|quarks?|blackbody|black body": 3.5,
        r"radioactiv\w*|fission|alpha particles?|beta particles?|gamma rays?|uncertainty principle": 3,
        r"nuclear|fusion|half[- ]li(?:fe|ves)|electron ?volts?|ev|mev|kev|speed of light|einstein|bohr": 2,
        r"isotopes?|neutrons?|protons?|atomic nucle(?:us|i)": 1.5, r"lasers?": 1,
    },
    "mechanics": {
        r"torque|fulcrum|mechanical advantage|simple machines?|center of mass|moment of inertia|hooke'?s law": 3.5,
        r"buoyan\w*|archimedes|hydraulic|pendulums?|levers?|pulleys?|inclined planes?": 3,
        r"gravit\w*": 2.5, r"angular|rotat\w*|orbit(?:s|ing|ed)?|spring constant|springs? (?:stretch|compress)\w*": 1.5,
        r"pressure": 1, r"densit(?:y|ies)|fluids?|float(?:s|ing)?|sinks?": 1, r"satellites?": 1, r"equilibrium": 1,
    },
}

NON_PHYSICS_LEXICON: dict[str, float] = {
    # Biology.
    r"cells?|cellular|organisms?|species|genes?|genetic\w*|dna|rna|proteins?|enzymes?|photosynthesis": 3,
    r"plants?|animals?|bacteri\w*|virus\w*|evolution\w*|ecosystems?|habitats?|predators?|prey|food (?:chain|web)s?": 3,
    r"mitosis|meiosis|chromosomes?|tissues?|organs?|blood|heart|lungs?|digest\w*|muscles?|bones?|nerves?": 3,
    r"neurons?|hormones?|reproduc\w*|offspring|inherit\w*|traits?|fungi|fungus|insects?|mammals?|reptiles?": 3,
    r"birds?|fish|seeds?|flowers?|leaf|leaves|roots?|immune|diseases?|infections?|vaccines?|populations?": 2.5,
    r"adaptations?|nutrients?|metabolism|membranes?|mitochondri\w*|chloroplasts?|embryos?|kidneys?|skin": 2.5,
    r"biolog\w*|living things?|body|bodies|human|humans|sperm|eggs?|pollinat\w*|cancer|vitamins?|diet": 2,
    # Chemistry.
    r"chemical\w*|chemistry|compounds?|periodic table|acids?|acidic|ph|ions?|ionic|covalent|valence|catalysts?": 3,
    r"oxidation|solutes?|solvents?|dissolv\w*|molar\w*|moles|atomic numbers?|electron configurations?": 3,
    r"noble gas\w*|alkali\w*|halogens?|polymers?|hydrocarbons?|organic|salts?|precipitates?|titrat\w*": 3,
    r"reactions?|react\w*|molecules?|molecular|elements?|bonds?|bonding|mixtures?|formulas?|carbon": 1.5,
    # Earth and space science.
    r"rocks?|minerals?|erosion|weathering|sediment\w*|volcan\w*|earthquakes?|tectonic\w*|magma|lava": 3,
    r"soils?|glaciers?|fossils?|weather|climates?|clouds?|rain\w*|hurricanes?|tornado\w*|humidity": 3,
    r"groundwater|continents?|crust|mantle|sea level|water cycle|geolog\w*|mountains?|rivers?|lakes?": 3,
    r"planets?|moons?|stars?|galax\w*|solar system|seasons?|constellations?|comets?|asteroids?|atmospher\w*": 2,
    r"oceans?|tides?|pollut\w*|recycl\w*|natural resources?|fossil fuels?|environment\w*|deforestation": 2,
}

# A number with an SI unit ("12 m/s", "5kg") adds to the general physics score. It is matched separately
# because the keyword pattern would otherwise consume the unit ("m/s") that a topic keyword needs.
QUANTITY_PATTERN = re.compile(
    r"\d(?:\.\d+)? ?(?:kg|g|m|cm|mm|km|s|ms|n|kn|j|kj|w|kw|v|mv|a|ma|hz|khz|mhz|ohms?|pa|kpa|ev|mev)(?![A-Za-z])",
    re.IGNORECASE,
)
QUANTITY_WEIGHT = 1.5

_SEGMENT_WEIGHTS = {"question": 1.0, "answer": 0.6, "choices": 0.3}
_MIN_PHYSICS_SCORE = 2.0
_PHYSICS_MARGIN = 1.25
# Tie-break order: the specific mechanics topics first, the broad one last.
_TOPIC_ORDER = (
    "momentum", "energy", "kinematics", "dynamics", "thermodynamics",
    "electromagnetism", "waves_optics", "modern_physics", "mechanics",
)  # fmt: skip
_PHYSICS_GROUPS = (*_TOPIC_ORDER, "general")


class LexiconClassifier:
    """Weighted keyword classifier. A segment counts each keyword once; question words weigh more than choices.

    Topic score = sum over question, answer and the other choices of segment weight x keyword weight. The text
    is physics when the physics total (all topics plus general physics words and quantities) is at least 2
    and exceeds 1.25 x the non-physics cue score.
    """

    def __init__(
        self,
        topic_lexicon: dict[str, dict[str, float]] | None = None,
        non_physics_lexicon: dict[str, float] | None = None,
    ) -> None:
        topic_lexicon = TOPIC_LEXICON if topic_lexicon is None else topic_lexicon
        non_physics_lexicon = NON_PHYSICS_LEXICON if non_physics_lexicon is None else non_physics_lexicon
        entries: list[tuple[str, float]] = []
        for group in _PHYSICS_GROUPS:
            entries.extend((group, weight) for weight in topic_lexicon.get(group, {}).values())
        entries.extend(("non_physics", weight) for weight in non_physics_lexicon.values())
        fragments = [fragment for group in _PHYSICS_GROUPS for fragment in topic_lexicon.get(group, {})]
        fragments.extend(non_physics_lexicon)
        self._entries = entries
        alternatives = "|".join(f"(?P<k{index}>{fragment})" for index, fragment in enumerate(fragments))
        self._pattern = re.compile(rf"(?<![A-Za-z])(?:{alternatives})(?![A-Za-z])", re.IGNORECASE)

    def _keyword_hits(self, text: str) -> set[int]:
        return {int(match.lastgroup[1:]) for match in self._pattern.finditer(text)}

    def classify(self, question: str, choices: Sequence[str] = (), answer: str = "") -> TopicResult:
        others = [choice for choice in choices if choice != answer]
        segments = (("question", question), ("answer", answer), ("choices", " | ".join(others)))
        scores = dict.fromkeys((*_PHYSICS_GROUPS, "non_physics"), 0.0)
        for segment, text in segments:
            for index in self._keyword_hits(text):
                name, weight = self._entries[index]
                scores[name] += _SEGMENT_WEIGHTS[segment] * weight
            if QUANTITY_PATTERN.search(text):
                scores["general"] += _SEGMENT_WEIGHTS[segment] * QUANTITY_WEIGHT

        physics_total = sum(scores[group] for group in _PHYSICS_GROUPS)
        best = max(_TOPIC_ORDER, key=lambda topic: (scores[topic], -_TOPIC_ORDER.index(topic)))
        topic = best if scores[best] > 0 else "other"
        is_physics = physics_total >= _MIN_PHYSICS_SCORE and physics_total > _PHYSICS_MARGIN * scores["non_physics"]
        rounded = {name: round(value, 3) for name, value in scores.items() if value}
        return TopicResult(is_physics=is_physics, topic=topic, scores=rounded)


CLASSIFIERS: dict[str, Callable[[], TopicClassifier]] = {"lexicon": LexiconClassifier}


def get_classifier(name: str) -> TopicClassifier:
    """Return a new classifier registered under `name` (the config key `data.topic_classifier`)."""
    if name not in CLASSIFIERS:
        raise ConfigError(f"unknown data.topic_classifier {name!r}; available: {', '.join(sorted(CLASSIFIERS))}")
    return CLASSIFIERS[name]()

