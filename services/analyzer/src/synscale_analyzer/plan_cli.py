"""`synscale plan`: from a finished pilot study, predict the best cell at a target and write the follow-up.

`synscale plan STUDY.yaml --data-dir DIR` reads an embedded study's store; with
`--address` the argument is a study id and the distributed analyzer plans it (gRPC
PlanStudy). Both print the same Markdown (planning.markdown) and can write the follow-up
study and the plan as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synscale.errors import InvalidInput

if TYPE_CHECKING:
    from synscale.study import StudySpec
    from synscale_analyzer.model import AnalysisInput


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    from synscale_analyzer.allocation import DEFAULT_MAX_SHIFT
    from synscale_analyzer.planner import DEFAULT_CONFIDENCE, DEFAULT_MAX_EXTRAPOLATION

    p = subparsers.add_parser("plan", help="predict each cell's error at a target from a pilot study; "
                                           "allocate per class; write a follow-up study")
    p.add_argument("study", help="the pilot's study YAML (embedded store), or its study id with --address")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-per-class", type=int, metavar="N", help="images per class at the target")
    target.add_argument("--budget-images", type=int, metavar="IMAGES", help="total synthetic images")
    target.add_argument("--budget-gpu-hours", type=float, metavar="HOURS",
                        help="GPU-hours of generation (needs --cost per generator)")
    p.add_argument("--cost", action="append", default=[], metavar="GENERATOR=HOURS",
                   help="GPU-hours per image of a generator (repeat per generator)")
    p.add_argument("--max-pilot-n", type=int, default=None,
                   help="plan from the runs up to this size only (e.g. to validate against larger ones)")
    p.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE,
                   help=f"P(best) needed to decide (default {DEFAULT_CONFIDENCE})")
    p.add_argument("--max-extrapolation", type=float, default=DEFAULT_MAX_EXTRAPOLATION,
                   help="refuse targets beyond this × the largest pilot size "
                        f"(default {DEFAULT_MAX_EXTRAPOLATION:g})")
    p.add_argument("--max-shift", type=float, default=DEFAULT_MAX_SHIFT,
                   help="allocation trust region: each class within uniform ÷/× this "
                        f"(default {DEFAULT_MAX_SHIFT:g})")
    p.add_argument("--followup", default="", metavar="FILE", help="write the follow-up study here")
    p.add_argument("--json", default="", metavar="FILE", help="write the plan as JSON here")
    p.add_argument("--data-dir", default=os.environ.get("SYNSCALE_DATA_DIR", "runs"),
                   help="the embedded store's directory (default $SYNSCALE_DATA_DIR or ./runs)")
    p.add_argument("--address", default="", help="plan through the analyzer at host:port (gRPC)")
    p.set_defaults(func=cmd_plan)


def _costs(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise InvalidInput("--cost", f"expected GENERATOR=GPU_HOURS_PER_IMAGE, got {item!r}") from None
        if not sep or not name.strip():
            raise InvalidInput("--cost", f"expected GENERATOR=GPU_HOURS_PER_IMAGE, got {item!r}")
    return out


def cmd_plan(args: argparse.Namespace) -> int:
    import logging

    from synscale_analyzer.planning import PlanOptions

    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)  # the store rebuild's INFO lines are not the plan

    opts = PlanOptions(
        target_per_class=args.target_per_class, budget_images=args.budget_images,
        budget_gpu_hours=args.budget_gpu_hours, cost_per_image=_costs(args.cost),
        max_pilot_n=args.max_pilot_n,
        confidence=args.confidence, max_extrapolation=args.max_extrapolation, max_shift=args.max_shift)
    if args.address:
        doc, text, followup = _remote(args.address, args.study, opts)
    else:
        doc, text, followup = _local(Path(args.study), Path(args.data_dir), opts)
    print(text, end="")
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"plan written to {args.json}", file=sys.stderr)
    if args.followup:
        if not followup:
            print(f"no follow-up study: {doc['verdict']}", file=sys.stderr)
            return 1
        Path(args.followup).write_text(followup)
        print(f"follow-up study written to {args.followup}", file=sys.stderr)
    return 0


def embedded_input(study: Path, data_dir: Path) -> tuple[StudySpec, AnalysisInput]:
    """A study's spec and its finished runs and scores, read from an embedded store."""
    from synscale.bus import MemoryBus
    from synscale.runtime import ServiceContext
    from synscale.store.file import FileStore
    from synscale.study import load_study
    from synscale_analyzer.orchestrator import Orchestrator
    from synscale_analyzer.records import analysis_input

    spec = load_study(study)
    store_dir = data_dir / "store"
    if not store_dir.is_dir():
        raise InvalidInput("--data-dir", f"{store_dir} does not exist: run the pilot first "
                                         f"(synscale study run {study} --data-dir {data_dir})")
    orch = Orchestrator(ServiceContext(MemoryBus(), FileStore(store_dir, "synscale")))
    return spec, analysis_input(orch.study(spec.study_id, spec))


def _local(study: Path, data_dir: Path, opts: Any) -> tuple[dict[str, Any], str, str]:
    from synscale_analyzer.planning import markdown, plan_outcome

    spec, inp = embedded_input(study, data_dir)
    outcome = plan_outcome(inp, spec, opts)
    return outcome.to_dict(), markdown(outcome), outcome.followup


def _remote(address: str, study_id: str, opts: Any) -> tuple[dict[str, Any], str, str]:
    from synscale.v1 import study_pb2
    from synscale_analyzer.cli import _call, _stub

    req = study_pb2.PlanRequest(
        study_id=study_id, target_per_class=opts.target_per_class or 0, budget_images=opts.budget_images or 0,
        budget_gpu_hours=opts.budget_gpu_hours or 0.0, cost_per_image=dict(opts.cost_per_image),
        max_pilot_n=opts.max_pilot_n or 0, confidence=opts.confidence,
        max_extrapolation=opts.max_extrapolation,
        max_shift=opts.max_shift)
    reply = _call(_stub(address).PlanStudy, req)
    return json.loads(reply.plan_json), reply.markdown, reply.followup_yaml
