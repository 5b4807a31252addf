"""The embedded text-to-image model: a small diffusers UNet trained on Fashion-MNIST.

No pretrained T2I weights exist offline, so the embedded default trains its own model
(docs/embedded-generator.md). Modules: `model` (architecture, schedulers, space-to-depth), `text`
(MiniLM prompt embeddings), `captions` (training captions), `train` (the training loop),
`weights` (committed weights and checksums), `backend` (the sampling API the engine
calls), `grid` (sample grids for reports) and `cli` (`synscale embedded train-generator`).
"""
