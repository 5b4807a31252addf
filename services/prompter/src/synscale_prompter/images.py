"""Real images of a class, for the in_captions strategy.

Fashion-MNIST comes from synscale.datasets.fashion_mnist (training split, the first
images of the class in dataset order -- the same order the nested real subsets use).
ImageNet and custom sets read an ImageFolder tree, `<root>/<class id>/*.jpg|png`,
sorted by file name. PIL is imported only here, only when images are read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from synscale.errors import InvalidInput, PreconditionFailed
from synscale_prompter.classes import ClassDef

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class ImageSource(Protocol):
    fingerprint: str

    def images(self, cls: ClassDef, count: int) -> list[Any]:
        """Up to `count` RGB PIL images of the class, always the same ones."""
        ...


class FashionMnistImages:
    fingerprint = "fashion-mnist/train/first-per-class"

    def images(self, cls: ClassDef, count: int) -> list[Any]:
        from PIL import Image

        from synscale.datasets import fashion_mnist

        split = fashion_mnist.load("train")
        indices = split.per_class_indices()[cls.index][:count]
        return [Image.fromarray(split.images[i]).convert("RGB") for i in indices]


class ImageFolderImages:
    def __init__(self, root: str) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise InvalidInput("real_path", f"{root} is not a directory of class folders")
        self.fingerprint = f"folder:{self.root.resolve()}"

    def files(self, cls: ClassDef) -> list[Path]:
        folder = self.root / cls.id
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

    def images(self, cls: ClassDef, count: int) -> list[Any]:
        from PIL import Image

        files = self.files(cls)[:count]
        if not files:
            raise PreconditionFailed(f"in_captions: no real images of class {cls.id!r} "
                                     f"({cls.name}) under {self.root / cls.id}")
        out = []
        for f in files:
            with Image.open(f) as im:
                out.append(im.convert("RGB"))
        return out


def image_source_for(class_set: str, real_path: str) -> ImageSource:
    if real_path:
        return ImageFolderImages(real_path)
    if class_set == "fashion-mnist":
        return FashionMnistImages()
    raise InvalidInput("real_path", f"in_captions on class set {class_set!r} needs real images: "
                                    "an ImageFolder root with one folder per class id")
