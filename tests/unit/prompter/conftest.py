"""Fixtures of the prompter tests: class sets, an isolated cache, tiny transformers models."""

from __future__ import annotations

from pathlib import Path

import pytest

from synscale.store.file import FileStore

SPECIAL = ["<pad>", "</s>", "<unk>", "<s>"]
# A vocabulary small enough that a random model writes the class name in about half of
# its samples, so the word2sen filter has both kinds of sentence to sort.
WORDS = ["a", "the", "tench", "fish", "swims", "in", "lake", "big", "small", ".", "sneaker", "shoe"]
VOCAB = {w: i for i, w in enumerate(SPECIAL + WORDS)}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default caches go to the test's tmp dir, never to ~/.cache."""
    monkeypatch.setenv("SYNSCALE_CACHE_DIR", str(tmp_path / "cache-dir"))


@pytest.fixture
def cache_store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store", "prompter-test")


@pytest.fixture(scope="session")
def imagenet_set():  # type: ignore[no-untyped-def]
    from synscale_prompter.classes import imagenet

    return imagenet()


@pytest.fixture(scope="session")
def fashion_set():  # type: ignore[no-untyped-def]
    from synscale_prompter.classes import fashion_mnist

    return fashion_mnist()


def _save_tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(VOCAB, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>", bos_token="<s>").save_pretrained(path)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Randomly initialised T5 (seq2seq), GPT-2 (causal) and ViT+GPT-2 captioner, from configs."""
    import torch
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        T5Config,
        T5ForConditionalGeneration,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    root = tmp_path_factory.mktemp("tiny-models")
    n = len(VOCAB)
    gpt2 = {"vocab_size": n, "n_positions": 64, "n_embd": 16, "n_layer": 1, "n_head": 2,
            "bos_token_id": 3, "eos_token_id": 1, "pad_token_id": 0}
    torch.manual_seed(0)
    models = {
        "t5": T5ForConditionalGeneration(T5Config(
            vocab_size=n, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1,
            num_heads=2, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)),
        "gpt2": GPT2LMHeadModel(GPT2Config(**gpt2)),
    }
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(
        ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=16, num_hidden_layers=1,
                  num_attention_heads=2, intermediate_size=32),
        GPT2Config(**gpt2, add_cross_attention=True, is_decoder=True))
    config.decoder_start_token_id, config.pad_token_id, config.eos_token_id = 3, 0, 1
    captioner = VisionEncoderDecoderModel(config=config)
    gen = captioner.generation_config
    gen.decoder_start_token_id, gen.pad_token_id, gen.eos_token_id = 3, 0, 1
    gen.suppress_tokens = [0, 1, 2, 3]  # random weights would often end a caption at once
    models["captioner"] = captioner
    out = {}
    for name, model in models.items():
        path = root / name
        model.save_pretrained(path)
        _save_tokenizer(path)
        out[name] = path
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out["captioner"])
    return out
