"""Training captions for the embedded T2I model, in the styles of the prompt strategies.

The model only understands prompts like the ones it was trained on (docs/embedded-generator.md: styles
seen in training were recognized at 84–89%, unseen synonyms at 60%), so each training
image gets a caption drawn from every strategy the prompter uses — the bare class name,
name + description, name + hypernym, short sentences naming the class, and the 80 OpenAI
CLIP templates — plus a few common synonyms of each name. This list is ours on purpose:
it must stay fixed for the committed weights to be reproducible, whatever the prompter
later emits.
"""

from __future__ import annotations

from dataclasses import dataclass

from synscale.datasets.fashion_mnist import CLASSES


@dataclass(frozen=True)
class ClassText:
    name: str
    aliases: tuple[str, ...]
    description: str
    hypernym: str


CLASS_TEXT: tuple[ClassText, ...] = (
    ClassText(
        "T-shirt", ("t-shirt", "tee shirt", "top"), "a short-sleeved casual shirt without a collar", "shirt"
    ),
    ClassText(
        "trouser",
        ("trousers", "pants", "pair of trousers"),
        "a garment extending from the waist to the ankles, covering each leg separately",
        "garment",
    ),
    ClassText(
        "pullover",
        ("sweater", "jumper", "long-sleeved pullover"),
        "a knitted garment with long sleeves pulled on over the head",
        "sweater",
    ),
    ClassText(
        "dress",
        ("frock", "gown", "women's dress"),
        "a one-piece garment for a woman, with a skirt and a bodice",
        "woman's clothing",
    ),
    ClassText(
        "coat",
        ("jacket", "overcoat", "winter coat"),
        "an outer garment with sleeves, worn outdoors and fastened at the front",
        "overgarment",
    ),
    ClassText(
        "sandal",
        ("sandals", "flip-flop", "open shoe"),
        "a shoe consisting of a sole fastened to the foot by straps",
        "shoe",
    ),
    ClassText(
        "shirt",
        ("button-down shirt", "dress shirt", "blouse"),
        "a garment for the upper body with a collar, sleeves and buttons down the front",
        "garment",
    ),
    ClassText(
        "sneaker",
        ("sneakers", "trainer", "running shoe"),
        "a canvas or leather sports shoe with a rubber sole",
        "shoe",
    ),
    ClassText(
        "bag",
        ("handbag", "purse", "tote bag"),
        "a flexible container with a handle, used for carrying things",
        "container",
    ),
    ClassText(
        "ankle boot",
        ("boot", "ankle boots", "bootee"),
        "a boot that reaches just above the ankle",
        "footwear",
    ),
)
assert tuple(c.name for c in CLASS_TEXT) == tuple(name for _, name in CLASSES)

SENTENCES: tuple[str, ...] = (
    "a {name} on a plain background",
    "a picture of a {name} for sale",
    "a product shot of a {name}",
    "someone is wearing a {name}",
    "this {name} is part of a clothing catalogue",
    "an image showing a single {name}",
    "a grayscale photo of a {name} in an online shop",
    "the {name} was folded neatly",
)
"""word2sen-style sentences that contain the class name."""


def _clip_templates() -> tuple[str, ...]:
    """The 80 OpenAI ImageNet templates, as the `clip_templates` strategy uses them."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return tuple(t("{name}") for t in OPENAI_IMAGENET_TEMPLATES)


CORE_SHARE = 0.5
"""Share of training captions drawn from the core styles (`core_captions`), so the
strategies the study uses most are not drowned out by the 80 CLIP templates."""


def core_captions(class_index: int) -> list[str]:
    """The classname, classname_description and classname_hypernym styles."""
    text = CLASS_TEXT[class_index]
    return [
        text.name,
        f"a photo of a {text.name}",
        f"{text.name}, {text.description}",
        f"{text.name}, {text.hypernym}",
        f"{text.name}, a kind of {text.hypernym}",
        f"{text.name}: {text.description}",
    ]


def class_captions(class_index: int) -> list[str]:
    """Every training caption of one class, deduplicated, core styles first, fixed order."""
    text = CLASS_TEXT[class_index]
    captions = core_captions(class_index)
    captions += [t.format(name=text.name) for t in (*SENTENCES, *_clip_templates())]
    for alias in text.aliases:
        captions += [alias, f"a photo of a {alias}", f"a {alias}"]
    return list(dict.fromkeys(captions))


def caption_weights(class_index: int) -> list[float]:
    """Sampling weights over `class_captions(class_index)` (sum 1; CORE_SHARE on the core)."""
    captions = class_captions(class_index)
    core = set(core_captions(class_index))
    n_core = sum(c in core for c in captions)
    rest = len(captions) - n_core
    return [CORE_SHARE / n_core if c in core else (1 - CORE_SHARE) / rest for c in captions]


def all_captions() -> list[list[str]]:
    """Captions per class, in label order."""
    return [class_captions(i) for i in range(len(CLASS_TEXT))]
