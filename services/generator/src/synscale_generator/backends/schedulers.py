"""Scheduler names a generator may ask for, mapped to diffusers scheduler classes.

A scheduler is rebuilt from the loaded pipeline's own scheduler config, so the noise
schedule the model was trained with (betas, prediction type, offsets) is kept and only
the sampling algorithm changes.
"""

from __future__ import annotations

from typing import Any

from synscale.errors import InvalidInput

FIELD = "generator.scheduler"
KEEP = ("", "default")
SCHEDULER_CLASSES = {
    "ddim": "DDIMScheduler",
    "ddpm": "DDPMScheduler",
    "pndm": "PNDMScheduler",
    "lms": "LMSDiscreteScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "heun": "HeunDiscreteScheduler",
    "dpm": "DPMSolverMultistepScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "dpm_sde": "DPMSolverSDEScheduler",
    "unipc": "UniPCMultistepScheduler",
}


def check_scheduler_name(name: str, allowed: tuple[str, ...] | None = None) -> None:
    """Bad input when the name is unknown (or not allowed for this backend)."""
    names = allowed if allowed is not None else (*KEEP, *SCHEDULER_CLASSES)
    if name not in names:
        shown = ", ".join(repr(n) if n else "'' (model default)" for n in names)
        raise InvalidInput(FIELD, f"unknown scheduler {name!r}; allowed: {shown}")


def build_scheduler(name: str, current: Any) -> Any:
    """A scheduler of the named kind with the current one's config (or the current one)."""
    check_scheduler_name(name)
    if name in KEEP:
        return current
    import diffusers

    cls = getattr(diffusers, SCHEDULER_CLASSES[name])
    return cls.from_config(current.config)
