"""word2sen: a language model writes sentences that contain the class name.

Per (model, class name, K) the model is sampled until K distinct sentences that name
the class survive (or MAX_ROUNDS rounds have run); the survivors are cached, so a
study runs the model once per class and every prompter replica then reads the same
list. Image i draws one sentence by digest (see base.draw). A class for which the model
never names the class falls back to the bare class name, with a warning.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from synscale_prompter.cache import OutputCache
from synscale_prompter.classes import ClassDef
from synscale_prompter.models import check_model_dir, model_fingerprint, pick_device, seed_of, seeded
from synscale_prompter.strategies.base import Strategy, StrategyOptions, pick, register
from synscale_prompter.strategies.text import select_sentences

log = logging.getLogger(__name__)
MAX_ROUNDS = 4
CACHE_VERSION = 1


class SentenceGenerator(Protocol):
    """Samples `count` raw sentences for a class name (the model part of word2sen)."""

    fingerprint: str

    def generate(self, name: str, count: int, seed: int) -> list[str]: ...


class TransformersSentenceGenerator:
    """A seq2seq (T5-style keyword-to-sentence) or causal LM from a local directory."""

    SEQ2SEQ_INPUT = "{name}"
    CAUSAL_INPUT = "Write one sentence about a {name}:"

    def __init__(self, path: str, *, max_new_tokens: int = 32, top_p: float = 0.95,
                 temperature: float = 1.0, device: str | None = None) -> None:
        self.path = check_model_dir(path, "word2sen_model")
        self.settings = {"max_new_tokens": max_new_tokens, "top_p": top_p, "temperature": temperature}
        self.fingerprint = f"{model_fingerprint(self.path)}-{seed_of(self.settings) % 10**8}"
        self.device = device
        self._loaded: tuple[Any, Any, bool] | None = None

    def _load(self) -> tuple[Any, Any, bool]:
        if self._loaded is None:
            from transformers import (
                AutoConfig,
                AutoModelForCausalLM,
                AutoModelForSeq2SeqLM,
                AutoTokenizer,
            )

            config = AutoConfig.from_pretrained(self.path, local_files_only=True)
            seq2seq = bool(getattr(config, "is_encoder_decoder", False))
            auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
            tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            self.device = self.device or pick_device()
            model: Any = auto.from_pretrained(self.path, local_files_only=True)
            model = model.to(self.device).eval()
            self._loaded = (tokenizer, model, seq2seq)
        return self._loaded

    def generate(self, name: str, count: int, seed: int) -> list[str]:
        import torch

        tokenizer, model, seq2seq = self._load()
        text = (self.SEQ2SEQ_INPUT if seq2seq else self.CAUSAL_INPUT).format(name=name)
        inputs = tokenizer([text], return_tensors="pt").to(self.device)
        with seeded(seed), torch.no_grad():
            out = model.generate(
                **inputs, do_sample=True, num_return_sequences=count,
                pad_token_id=tokenizer.pad_token_id, **self.settings,
            )
        if not seq2seq:  # a causal model echoes its input: keep the continuation only
            out = out[:, inputs["input_ids"].shape[1]:]
        return [str(s) for s in tokenizer.batch_decode(out, skip_special_tokens=True)]


@register
class Word2Sen(Strategy):
    name = "word2sen"
    description = "a language model writes K sentences containing the class name; one per image"
    needs_model = True

    def __init__(self, options: StrategyOptions | None = None) -> None:
        super().__init__(options)
        self.k = self.options.word2sen_k
        self.generator: SentenceGenerator = (
            self.options.sentence_generator
            or TransformersSentenceGenerator(self.options.word2sen_model))
        self.cache = OutputCache(self.options.cache)
        self._sentences: dict[str, list[str]] = {}
        self.model_calls = 0

    def _parts(self, cls: ClassDef) -> tuple[Any, ...]:
        return (CACHE_VERSION, self.generator.fingerprint, cls.name, self.k)

    def sentences(self, cls: ClassDef) -> list[str]:
        """The class's K (or fewer) sentences, generated once and cached."""
        if cls.name in self._sentences:
            return self._sentences[cls.name]
        cached = self.cache.get(self.name, self._parts(cls))
        if cached is None:
            cached = self._generate(cls)
            self.cache.put(self.name, self._parts(cls), cached)
        self._sentences[cls.name] = list(cached)
        return self._sentences[cls.name]

    def _generate(self, cls: ClassDef) -> list[str]:
        candidates: list[str] = []
        kept: list[str] = []
        for round_ in range(MAX_ROUNDS):
            seed = seed_of(self.generator.fingerprint, cls.name, self.k, round_)
            candidates += self.generator.generate(cls.name, self.k, seed)
            self.model_calls += 1
            kept = select_sentences(candidates, cls.name, self.k)
            if len(kept) >= self.k:
                break
        if len(kept) < self.k:
            log.warning("word2sen: %d of %d sentences for %r name the class after %d candidates",
                        len(kept), self.k, cls.name, len(candidates))
        return kept

    def prompt(self, cls: ClassDef, index: int, namespace: str) -> str:
        sentences = self.sentences(cls)
        return pick(sentences, namespace, self.name, cls, index) if sentences else cls.name
