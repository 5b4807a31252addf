"""in_captions: "{name}, {caption}" with captions of real images of the class.

A captioning model from a local directory captions the first N real images of each
class (greedy decoding: deterministic). Captions are cleaned and deduplicated, cached
per (captioner, image source, class, N), and image i draws one by digest.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from synscale_prompter.cache import OutputCache
from synscale_prompter.classes import ClassDef
from synscale_prompter.images import ImageSource, image_source_for
from synscale_prompter.models import check_model_dir, model_fingerprint, pick_device
from synscale_prompter.strategies.base import Strategy, StrategyOptions, pick, register
from synscale_prompter.strategies.text import dedupe

log = logging.getLogger(__name__)
CACHE_VERSION = 1


class Captioner(Protocol):
    fingerprint: str

    def caption(self, images: Sequence[Any]) -> list[str]: ...


class TransformersCaptioner:
    """Any image-to-text model transformers can load: BLIP, BLIP-2, GIT, or a
    VisionEncoderDecoder (ViT + GPT-2 style) with its image processor and tokenizer."""

    def __init__(self, path: str, *, max_new_tokens: int = 30, batch_size: int = 16,
                 device: str | None = None) -> None:
        self.path = check_model_dir(path, "captioner_model")
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.fingerprint = f"{model_fingerprint(self.path)}-greedy{max_new_tokens}"
        self.device = device
        self._loaded: tuple[Any, Any, Any] | None = None

    def _load(self) -> tuple[Any, Any, Any]:
        if self._loaded is None:
            from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer

            config = AutoConfig.from_pretrained(self.path, local_files_only=True)
            model: Any
            if config.model_type == "vision-encoder-decoder":
                from transformers import VisionEncoderDecoderModel

                model = VisionEncoderDecoderModel.from_pretrained(self.path, local_files_only=True)
                images = AutoImageProcessor.from_pretrained(self.path, local_files_only=True)
                text = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            else:
                from transformers import AutoModelForImageTextToText, AutoProcessor

                model = AutoModelForImageTextToText.from_pretrained(self.path, local_files_only=True)
                images = text = AutoProcessor.from_pretrained(self.path, local_files_only=True)
            self.device = self.device or pick_device()
            model = model.to(self.device)
            self._loaded = (model.eval(), images, text)
        return self._loaded

    def caption(self, images: Sequence[Any]) -> list[str]:
        import torch

        model, image_processor, decoder = self._load()
        out: list[str] = []
        for start in range(0, len(images), self.batch_size):
            batch = list(images[start:start + self.batch_size])
            inputs = image_processor(images=batch, return_tensors="pt").to(self.device)
            with torch.no_grad():
                ids = model.generate(**inputs, do_sample=False, max_new_tokens=self.max_new_tokens)
            out += [str(s) for s in decoder.batch_decode(ids, skip_special_tokens=True)]
        return out


@register
class InCaptions(Strategy):
    name = "in_captions"
    description = "class name and a caption of a real image of the class: '{name}, {caption}'"
    needs_model = True

    def __init__(self, options: StrategyOptions | None = None) -> None:
        super().__init__(options)
        self.count = self.options.captions_per_class
        self.captioner: Captioner = (
            self.options.captioner or TransformersCaptioner(self.options.captioner_model))
        self.source: ImageSource = (
            self.options.image_source
            or image_source_for(self.options.class_set, self.options.real_path))
        self.cache = OutputCache(self.options.cache)
        self._captions: dict[str, list[str]] = {}
        self.model_calls = 0

    def _parts(self, cls: ClassDef) -> tuple[Any, ...]:
        return (CACHE_VERSION, self.captioner.fingerprint, self.source.fingerprint, cls.id, self.count)

    def captions(self, cls: ClassDef) -> list[str]:
        if cls.id in self._captions:
            return self._captions[cls.id]
        cached = self.cache.get(self.name, self._parts(cls))
        if cached is None:
            images = self.source.images(cls, self.count)
            cached = dedupe(self.captioner.caption(images))
            self.model_calls += 1
            if not cached:
                log.warning("in_captions: the captioner gave no usable caption for %r", cls.name)
            self.cache.put(self.name, self._parts(cls), cached)
        self._captions[cls.id] = list(cached)
        return self._captions[cls.id]

    def prompt(self, cls: ClassDef, index: int, namespace: str) -> str:
        captions = self.captions(cls)
        return f"{cls.name}, {pick(captions, namespace, self.name, cls, index)}" if captions else cls.name
