"""Tiny randomly initialised pipelines of every diffusers family, built offline from configs.

No model hub is reachable, so the backends' code paths are exercised the way diffusers'
own tests do it: a UNet/VAE/text encoder a few thousand parameters large, a tokenizer
whose vocabulary is written here (byte-level BPE for CLIP, unigram for T5), saved with
`save_pretrained` into a directory the backend then loads like a real model. The images
are noise; the loading, batching, seeding and decoding are the real thing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

TINY_FAMILIES = ("sd", "sdxl", "deepfloyd_if", "amused")
_WORDS = ("a", "photo", "of", "the", "shirt", "dress", "bag", "coat", "cat", "dog")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    keep += list(range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, (chr(c) for c in chars), strict=True))


def tiny_clip_tokenizer(directory: Path | None = None):  # type: ignore[no-untyped-def]
    """A CLIP byte-level BPE tokenizer with a hand-written vocab (every byte, a few merges).

    When `directory` is given, vocab.json and merges.txt are written there first and the
    tokenizer is read back from those files, as a pipeline's tokenizer folder would be.
    """
    import json

    from transformers import CLIPTokenizer

    symbols = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for s in symbols:
        vocab[s] = len(vocab)
    for s in symbols:
        vocab[s + "</w>"] = len(vocab)
    merges: list[str] = []
    for word in _WORDS:  # merge each listed word into one token, left to right
        if len(word) < 2:
            continue
        current = word[0]
        for i, ch in enumerate(word[1:], start=1):
            right = ch + ("</w>" if i == len(word) - 1 else "")
            merges.append(f"{current} {right}")
            current = current + right
            vocab.setdefault(current, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    if directory is None:
        pairs = [tuple(m.split(" ")) for m in merges]
        return CLIPTokenizer(vocab=vocab, merges=pairs, model_max_length=77)  # type: ignore[arg-type]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return CLIPTokenizer(
        vocab=str(directory / "vocab.json"), merges=str(directory / "merges.txt"), model_max_length=77,
    )


def tiny_t5_tokenizer():  # type: ignore[no-untyped-def]
    """A T5 unigram tokenizer over printable ASCII pieces and a few whole words."""
    from transformers import T5Tokenizer

    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(f"▁{w}", -1.0) for w in _WORDS]
    pieces += [(chr(c), -5.0) for c in range(33, 127)]
    pieces += [(f"▁{chr(c)}", -4.0) for c in range(33, 127)]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=77)


def _clip_text_config(tokenizer, hidden: int = 32, projection_dim: int = 32):  # type: ignore[no-untyped-def]
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, hidden_size=hidden, intermediate_size=37,
        layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2,
        vocab_size=len(tokenizer) + 8, projection_dim=projection_dim, max_position_embeddings=77,
    )


def _tiny_vae():  # type: ignore[no-untyped-def]
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[4, 8], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4, norm_num_groups=2,
    )


def _ddim():  # type: ignore[no-untyped-def]
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        clip_sample=False, set_alpha_to_one=False, steps_offset=1,
    )


def build_tiny_sd(directory: Path) -> Path:
    """Stable Diffusion 1.x/2.x layout: UNet + KL VAE + CLIP text encoder (latent /2)."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    tokenizer = tiny_clip_tokenizer(directory / "tokenizer")
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32, norm_num_groups=2,
    )
    pipe: Any = StableDiffusionPipeline(
        unet=unet, scheduler=_ddim(), vae=_tiny_vae(),
        text_encoder=CLIPTextModel(_clip_text_config(tokenizer)), tokenizer=tokenizer,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(directory)
    return directory


def build_tiny_sdxl(directory: Path) -> Path:
    """SDXL layout: two CLIP text encoders, text_time added conditioning."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    tokenizer = tiny_clip_tokenizer(directory / "tokenizer")
    config = _clip_text_config(tokenizer)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=8 * 6 + 32,
        cross_attention_dim=64, norm_num_groups=1,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
        timestep_spacing="leading",
    )
    pipe: Any = StableDiffusionXLPipeline(
        unet=unet, scheduler=scheduler, vae=_tiny_vae(), text_encoder=CLIPTextModel(config),
        tokenizer=tokenizer, text_encoder_2=CLIPTextModelWithProjection(config), tokenizer_2=tokenizer,
    )
    pipe.save_pretrained(directory)
    return directory


def _if_unet(in_channels: int, out_channels: int, super_resolution: bool):  # type: ignore[no-untyped-def]
    """Stage I makes 8x8 images; stage II (super resolution) 16x16 from them."""
    from diffusers import UNet2DConditionModel
    from diffusers.models.attention_processor import AttnAddedKVProcessor

    extra = {"class_embed_type": "timestep"} if super_resolution else {}
    unet: Any = UNet2DConditionModel(
        sample_size=16 if super_resolution else 8, layers_per_block=1, block_out_channels=[8, 16],
        down_block_types=["ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"],
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        up_block_types=["SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"],
        in_channels=in_channels, out_channels=out_channels, cross_attention_dim=32,
        encoder_hid_dim=32, attention_head_dim=4, addition_embed_type="text",
        addition_embed_type_num_heads=2, cross_attention_norm="group_norm",
        resnet_time_scale_shift="scale_shift", act_fn="gelu", norm_num_groups=4, **extra,
    )
    unet.set_attn_processor(AttnAddedKVProcessor())
    return unet


def _if_text(tokenizer):  # type: ignore[no-untyped-def]
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(  # type: ignore[call-arg]
        vocab_size=len(tokenizer) + 8, d_model=32, d_kv=8, d_ff=32, num_layers=2, num_heads=4,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    ))


def _if_scheduler():  # type: ignore[no-untyped-def]
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", thresholding=True,
        dynamic_thresholding_ratio=0.95, sample_max_value=1.0, prediction_type="epsilon",
        variance_type="learned_range",
    )


def build_tiny_if(directory: Path, stage2: Path | None = None) -> Path:
    """DeepFloyd IF (Imagen-like): T5 text encoder, pixel-space cascade; stage II optional."""
    from diffusers import IFPipeline, IFSuperResolutionPipeline

    torch.manual_seed(0)
    tokenizer = tiny_t5_tokenizer()
    text_encoder = _if_text(tokenizer)
    stage1: Any = IFPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, unet=_if_unet(3, 6, False),
        scheduler=_if_scheduler(), safety_checker=None, feature_extractor=None, watermarker=None,
        requires_safety_checker=False,
    )
    stage1.save_pretrained(directory)
    if stage2 is not None:
        sr: Any = IFSuperResolutionPipeline(
            tokenizer=tokenizer, text_encoder=text_encoder, unet=_if_unet(6, 6, True),
            scheduler=_if_scheduler(), image_noising_scheduler=_if_scheduler(),
            safety_checker=None, feature_extractor=None, watermarker=None,
            requires_safety_checker=False,
        )
        sr.save_pretrained(stage2)
    return directory


def build_tiny_amused(directory: Path) -> Path:
    """aMUSEd (Muse-like): VQ-GAN tokens predicted by a masked U-ViT transformer."""
    from diffusers import AmusedPipeline, AmusedScheduler, UVit2DModel, VQModel
    from transformers import CLIPTextModelWithProjection

    torch.manual_seed(0)
    tokenizer = tiny_clip_tokenizer(directory / "tokenizer")
    transformer = UVit2DModel(
        hidden_size=8, use_bias=False, hidden_dropout=0.0, cond_embed_dim=8, micro_cond_encode_dim=2,
        micro_cond_embed_dim=10, encoder_hidden_size=8, vocab_size=32, codebook_size=8,
        in_channels=8, block_out_channels=8, num_res_blocks=1, downsample=True, upsample=True,
        block_num_heads=1, num_hidden_layers=1, num_attention_heads=1, attention_dropout=0.0,
        intermediate_size=8, layer_norm_eps=1e-06, ln_elementwise_affine=True,
    )
    vqvae = VQModel(
        act_fn="silu", block_out_channels=[8], down_block_types=["DownEncoderBlock2D"],
        in_channels=3, latent_channels=8, layers_per_block=1, norm_num_groups=8,
        num_vq_embeddings=8, out_channels=3, sample_size=8, up_block_types=["UpDecoderBlock2D"],
        mid_block_add_attention=False, lookup_from_codebook=True,
    )
    text_encoder = CLIPTextModelWithProjection(_clip_text_config(tokenizer, hidden=8, projection_dim=8))
    pipe: Any = AmusedPipeline(
        vqvae=vqvae, tokenizer=tokenizer, text_encoder=text_encoder, transformer=transformer,
        scheduler=AmusedScheduler(mask_token_id=31),
    )
    pipe.save_pretrained(directory)
    return directory


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "sd": build_tiny_sd,
    "sdxl": build_tiny_sdxl,
    "deepfloyd_if": build_tiny_if,
    "amused": build_tiny_amused,
}
