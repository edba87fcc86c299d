"""What the synthetic MMAD root knows about each category: dataset, defect folders, facts, knowledge.

Why a table: the questions, their correct answers and the domain-knowledge texts must agree with what
the painter really drew. Keeping every fact about a category in one record makes that agreement
visible (a defect folder names the painter kind that produced it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KindText:
    """How MMAD-style questions talk about one painter kind."""

    label: str  # Defect Classification option
    appearance: str  # Defect Description option
    effect: str  # Defect Analysis option


KIND_TEXTS: dict[str, KindText] = {
    "scratch": KindText(
        "Scratch.",
        "A thin, elongated line running across the surface.",
        "It damages the surface finish and can spread into a deeper fault under stress.",
    ),
    "hole": KindText(
        "Hole.",
        "A small, round, dark opening with a darkened rim.",
        "It breaks through the material, so dirt or liquid can pass and the part loses strength.",
    ),
    "stain": KindText(
        "Color stain.",
        "An irregular discoloured patch with soft edges.",
        "It spoils the appearance and may point to chemical contamination during production.",
    ),
    "missing": KindText(
        "Missing part.",
        "A piece of material is absent, leaving an irregular gap in the outline or surface.",
        "The product is incomplete, so it may not seal, fit or function as intended.",
    ),
    "crack": KindText(
        "Crack.",
        "A jagged, branching dark line.",
        "It can grow under load or temperature changes until the part breaks.",
    ),
    "contamination": KindText(
        "Contamination.",
        "Small foreign particles and a fibre lying on the surface.",
        "Foreign matter makes the product unhygienic and unfit for sale.",
    ),
}
#: Extra wrong answers for Defect Classification, never painted by the generator.
EXTRA_LABELS = ("Bent.", "Misprint.", "Fold.", "Dent.", "Misalignment.")
#: Wrong answers for Object Classification.
OBJECT_NAMES = (
    "Bottle.",
    "Carpet.",
    "Wooden board.",
    "Metal plate.",
    "Screw.",
    "Pill.",
    "Hazelnut.",
    "Drink can.",
    "Cable.",
    "Transistor.",
    "Toothbrush.",
    "Zipper.",
    "Circuit board.",
    "Candle.",
)


@dataclass(frozen=True)
class Fact:
    """One Object Structure / Object Details question with its correct answer first."""

    type: str  # "Object Structure" or "Object Details"
    question: str
    options: tuple[str, str, str, str]  # correct first; shuffled when written


@dataclass(frozen=True)
class DefectSpec:
    folder: str  # MMAD defect folder name, e.g. "broken_large"
    kind: str  # painter kind in judo.synthetic.DEFECT_KINDS
    title: str  # domain-knowledge title, e.g. "Large Breakage"
    label: str | None = None  # classification answer when more specific than the kind's label


@dataclass(frozen=True)
class CategorySpec:
    name: str  # category folder, e.g. "bottle"
    dataset: str  # one of judo.mmad.DATASETS
    product: str  # judo.synthetic.CATEGORIES entry used to draw it
    object_name: str  # Object Classification answer
    size: tuple[int, int]  # default picture size (width, height)
    defects: tuple[DefectSpec, ...]
    facts: tuple[Fact, ...]
    normal_text: str  # "good" domain knowledge

    def defect(self, folder: str) -> DefectSpec:
        return next(d for d in self.defects if d.folder == folder)


def _facts(*rows: tuple[str, str, str, str, str, str]) -> tuple[Fact, ...]:
    return tuple(Fact(t, q, (a, b, c, d)) for t, q, a, b, c, d in rows)


S, D = "Object Structure", "Object Details"

SPECS: dict[str, CategorySpec] = {
    spec.name: spec
    for spec in (
        CategorySpec(
            "bottle",
            "DS-MVTec",
            "bottle",
            "Bottle.",
            (256, 256),
            (
                DefectSpec("broken_large", "missing", "Large Breakage", "Broken rim."),
                DefectSpec("contamination", "contamination", "Contamination"),
            ),
            _facts(
                (
                    S,
                    "What is the shape of the bottle opening seen from above?",
                    "Circular.",
                    "Square.",
                    "Triangular.",
                    "Hexagonal.",
                ),
                (
                    D,
                    "What does the centre of the opening look like?",
                    "Dark, nearly black.",
                    "Bright white.",
                    "Bright red.",
                    "Covered by a printed label.",
                ),
                (
                    S,
                    "What surrounds the dark centre of the image?",
                    "A ring-shaped glass rim.",
                    "A row of metal teeth.",
                    "A woven fabric border.",
                    "Nothing; the image is uniform.",
                ),
            ),
            "The images show the top view of a bottle: a symmetrical, intact circular glass rim around a "
            "dark interior, on a light background. Small variations in reflection are normal.",
        ),
        CategorySpec(
            "carpet",
            "DS-MVTec",
            "carpet",
            "Carpet.",
            (256, 256),
            (
                DefectSpec("hole", "hole", "Hole"),
                DefectSpec("color", "stain", "Color Stain"),
                DefectSpec("cut", "scratch", "Cut", "Cut."),
            ),
            _facts(
                (
                    S,
                    "What pattern does the surface show?",
                    "A regular woven pattern.",
                    "Random spots.",
                    "Parallel wood grain.",
                    "Printed text and logos.",
                ),
                (D, "What is the surface made of?", "Woven fibres.", "Polished metal.", "Glass.", "Paper."),
                (
                    S,
                    "How are the threads arranged?",
                    "Interlaced over and under in a grid.",
                    "In concentric circles.",
                    "Randomly tangled.",
                    "In one long spiral.",
                ),
            ),
            "The images show a close-up of carpet: threads interlaced over and under in a regular grid, "
            "with a uniform colour. Slight irregularity of the weave and fibre texture is normal.",
        ),
        CategorySpec(
            "screw",
            "MVTec-LOCO",
            "screw",
            "Screw.",
            (256, 256),
            (
                DefectSpec("scratch_neck", "scratch", "Scratch on the Neck"),
                DefectSpec("manipulated_front", "missing", "Manipulated Front", "Damaged tip."),
            ),
            _facts(
                (
                    S,
                    "What is at one end of the screw?",
                    "A round head with a slot.",
                    "A hexagonal nut.",
                    "A plastic cap.",
                    "A hook.",
                ),
                (
                    D,
                    "What covers the shank of the screw?",
                    "A helical thread.",
                    "Smooth paint.",
                    "A rubber coating.",
                    "Gear teeth.",
                ),
                (S, "How many screws are in the image?", "One.", "Two.", "Three.", "None."),
            ),
            "The images show one metal screw with a slotted round head and a threaded shank tapering to a "
            "tip, lying at any angle on a light background. Orientation and position vary normally.",
        ),
        CategorySpec(
            "pill",
            "VisA",
            "pill",
            "Pill.",
            (256, 256),
            (
                DefectSpec("crack", "crack", "Crack"),
                DefectSpec("contamination", "contamination", "Contamination"),
                DefectSpec("color", "stain", "Color Defect"),
            ),
            _facts(
                (
                    S,
                    "What is the shape of the pill?",
                    "Oblong (elliptical).",
                    "Square.",
                    "Triangular.",
                    "Star-shaped.",
                ),
                (
                    D,
                    "What marks are on the pill?",
                    "Small red speckles.",
                    "Blue stripes.",
                    "A printed barcode.",
                    "None; the pill is transparent.",
                ),
                (
                    S,
                    "What divides the pill?",
                    "A score line across its width.",
                    "A metal band.",
                    "A zipper.",
                    "Nothing; it is two separate halves.",
                ),
            ),
            "The images show one white oblong pill with small red speckles and a score line across its "
            "width, on a dark tray. The speckle pattern differs from pill to pill and is normal.",
        ),
        CategorySpec(
            "drink_can",
            "GoodsAD",
            "drink_can",
            "Drink can.",
            (320, 256),
            (DefectSpec("scratch", "scratch", "Scratch"), DefectSpec("stain", "stain", "Stain")),
            _facts(
                (S, "What is attached to the lid?", "A pull tab.", "A screw cap.", "A cork.", "A straw."),
                (D, "What is the lid made of?", "Bright metal.", "Wood.", "Cardboard.", "Fabric."),
                (S, "What is the outline of the lid?", "Circular.", "Square.", "Triangular.", "Star-shaped."),
            ),
            "The images show the top of a beverage can: a bright circular metal rim, a recessed lid with a "
            "central rivet and a pull tab. The angle of the tab varies normally.",
        ),
        CategorySpec(
            "wood",
            "DS-MVTec",
            "wood",
            "Wooden board.",
            (256, 256),
            (
                DefectSpec("scratch", "scratch", "Scratch"),
                DefectSpec("hole", "hole", "Hole"),
                DefectSpec("color", "stain", "Color Stain"),
            ),
            _facts(
                (
                    S,
                    "What pattern does the surface show?",
                    "Wavy wood grain lines.",
                    "A woven grid.",
                    "Concentric metal rings.",
                    "Printed text.",
                ),
                (
                    D,
                    "What colour is the surface?",
                    "Light to medium brown.",
                    "Bright blue.",
                    "Pure white.",
                    "Green.",
                ),
                (
                    S,
                    "In which direction do the grain lines run?",
                    "Mostly vertically.",
                    "In circles only.",
                    "Nowhere; the surface is uniform.",
                    "In a zigzag grid.",
                ),
            ),
            "The images show planed wood with vertical, wavy grain lines in light and dark brown. Knots and "
            "variations of the grain are normal.",
        ),
        CategorySpec(
            "metal_plate",
            "MVTec-LOCO",
            "metal_plate",
            "Metal plate.",
            (256, 256),
            (DefectSpec("scratch", "scratch", "Scratch"), DefectSpec("crack", "crack", "Crack")),
            _facts(
                (
                    S,
                    "What texture does the surface show?",
                    "Fine parallel brushed streaks.",
                    "A woven grid.",
                    "Wood grain.",
                    "Large printed letters.",
                ),
                (D, "What colour is the plate?", "Silver grey.", "Bright yellow.", "Dark brown.", "Red."),
                (
                    S,
                    "How are the streaks oriented?",
                    "Horizontally.",
                    "In circles.",
                    "Randomly.",
                    "Diagonally.",
                ),
            ),
            "The images show brushed metal with fine horizontal streaks and a soft gradient of light. "
            "Variations in brightness are normal.",
        ),
        CategorySpec(
            "hazelnut",
            "VisA",
            "hazelnut",
            "Hazelnut.",
            (256, 256),
            (
                DefectSpec("crack", "crack", "Crack"),
                DefectSpec("hole", "hole", "Hole"),
                DefectSpec("print", "stain", "Print", "Print."),
            ),
            _facts(
                (
                    S,
                    "What is the shape of the object?",
                    "Round, slightly irregular.",
                    "Square.",
                    "Long and thin.",
                    "Flat and rectangular.",
                ),
                (
                    D,
                    "What colour is the shell?",
                    "Brown with a paler tip.",
                    "Bright green.",
                    "Blue.",
                    "White.",
                ),
                (S, "How many nuts are in the image?", "One.", "Two.", "Four.", "None."),
            ),
            "The images show one brown hazelnut with a striped shell and a paler tip on a dark background. "
            "Small variations in shape and colour are normal.",
        ),
    )
}
#: The default root: five categories spread over the four MMAD datasets.
DEFAULT_CATEGORIES = ("bottle", "carpet", "screw", "pill", "drink_can")


def knowledge_text(title: str, description: str) -> str:
    """MMAD's domain-knowledge text shape: ' <Title>\\n Description: ...'."""
    return f" <{title}>\n Description: {description}"


def spec_knowledge(spec: CategorySpec) -> dict[str, str]:
    """domain_knowledge.json texts of one category: every defect folder, then 'good'."""
    out = {}
    for d in spec.defects:
        kt = KIND_TEXTS[d.kind]
        out[d.folder] = knowledge_text(d.title, f"{kt.appearance} {kt.effect}")
    out["good"] = knowledge_text("Normal Characteristics", spec.normal_text)
    return out
