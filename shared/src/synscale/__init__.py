"""synscale: scaling laws of synthetic images for model training.

The common library shared by all five services and the embedded runner. It holds no
torch dependency so that the prompter and analyzer images stay small.
"""

__version__ = "0.1.0"
