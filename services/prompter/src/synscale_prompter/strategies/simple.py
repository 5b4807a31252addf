"""The strategies that need no model: class name, WordNet gloss / hypernym, CLIP templates."""

from __future__ import annotations

from synscale_prompter.classes import ClassDef, ClassSet
from synscale_prompter.imagenet_meta import PLACEHOLDER, openai_templates
from synscale_prompter.strategies.base import Strategy, pick, register, require_field


@register
class ClassName(Strategy):
    name = "classname"
    description = "the class name alone: '{name}'"

    def prompt(self, cls: ClassDef, index: int, namespace: str) -> str:
        return cls.name


@register
class ClassNameDescription(Strategy):
    name = "classname_description"
    description = "class name and its WordNet gloss: '{name}, {gloss}'"

    def check(self, class_set: ClassSet) -> None:
        require_field(class_set, "description", self.name)

    def prompt(self, cls: ClassDef, index: int, namespace: str) -> str:
        return f"{cls.name}, {cls.description}"


@register
class ClassNameHypernym(Strategy):
    name = "classname_hypernym"
    description = "class name and its WordNet hypernym: '{name}, {hypernym}'"

    def check(self, class_set: ClassSet) -> None:
        require_field(class_set, "hypernym", self.name)

    def prompt(self, cls: ClassDef, index: int, namespace: str) -> str:
        return f"{cls.name}, {cls.hypernym}"


@register
class ClipTemplates(Strategy):
    name = "clip_templates"
    description = "one of the 80 OpenAI ImageNet templates per image, e.g. 'a photo of a {name}.'"

    def prompt(self, cls: ClassDef, index: int, namespace: str) -> str:
        template = pick(openai_templates(), namespace, self.name, cls, index)
        return template.replace(PLACEHOLDER, cls.name)
