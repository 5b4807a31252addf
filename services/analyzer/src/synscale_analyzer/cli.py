"""`synscale study ...` and `synscale demo`: run studies embedded, or drive the distributed analyzer.

- `study run FILE` runs the whole study in this process (MemoryBus + FileStore under
  --data-dir); run it again to resume after an interruption.
- `study submit|status|watch|report|cancel` talk gRPC to a running analyzer
  (--address, default $SYNSCALE_ANALYZER_ADDRESS or 127.0.0.1:50051).
- `demo [--full]` runs examples/demo.yaml (or demo-full.yaml) embedded.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from synscale import layout
from synscale.errors import InvalidInput

DEFAULT_ADDRESS = "127.0.0.1:50051"
REPO_ROOT = Path(__file__).resolve().parents[4]


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    study = subparsers.add_parser("study", help="run, submit and follow scaling studies")
    sub = study.add_subparsers(dest="study_command", metavar="COMMAND")

    p = sub.add_parser("run", help="run a study end to end in this process (resumable)")
    p.add_argument("file", help="study YAML")
    _data_dir(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="check a study file; errors name the field")
    p.add_argument("file")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("submit", help="submit a study to the distributed analyzer")
    p.add_argument("file")
    p.add_argument("--watch", action="store_true", help="follow it until it finishes")
    _address(p)
    p.set_defaults(func=cmd_submit)

    for name, helptext, func in (("status", "print a study's state", cmd_status),
                                 ("watch", "progress bars until the study finishes", cmd_watch),
                                 ("report", "where the report is (and download it)", cmd_report),
                                 ("cancel", "stop launching work for a study", cmd_cancel)):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("study_id")
        _address(p)
        if name == "report":
            p.add_argument("--download", metavar="DIR", default="",
                           help="copy the report files here (store settings from the environment)")
        p.set_defaults(func=func)

    demo = subparsers.add_parser("demo", help="the embedded demo study (Fashion-MNIST, ~7 min on 2 CPUs)")
    demo.add_argument("--full", action="store_true", help="the larger grid (examples/demo-full.yaml)")
    demo.add_argument("--fresh", action="store_true", help="discard earlier progress instead of resuming")
    demo.add_argument("--data-dir", default="", help="default: runs/demo (runs/demo-full with --full)")
    demo.add_argument("--no-progress", action="store_true")
    demo.set_defaults(func=cmd_demo)

    from synscale_analyzer import plan_cli

    plan_cli.add_commands(subparsers)


def _data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=os.environ.get("SYNSCALE_DATA_DIR", "runs"),
                   help="where the embedded store lives (default $SYNSCALE_DATA_DIR or ./runs)")


def _address(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", default=os.environ.get("SYNSCALE_ANALYZER_ADDRESS", DEFAULT_ADDRESS),
                   help="analyzer gRPC address host:port")


# -- embedded ----------------------------------------------------------------------------
def _quiet_logs(verbose: bool) -> None:
    """Progress bars carry the news; service INFO logs would scroll them away."""
    if not verbose:
        logging.getLogger().setLevel(logging.WARNING)


def run_embedded(spec_path: Path, data_dir: Path, progress: bool, verbose: bool) -> int:
    from rich.console import Console

    from synscale.embedded import run_study
    from synscale.study import load_study

    console = Console(stderr=True)
    spec = load_study(spec_path)
    _quiet_logs(verbose)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    console.print(f"[bold]study[/] {spec.name} ({spec.study_id}) · store {data_dir / 'store'}")
    started = time.monotonic()
    outcome = run_study(spec, data_dir, progress=progress)
    wall = time.monotonic() - started
    if outcome.state != "done":
        console.print(f"[red]study {outcome.state}[/] after {wall:.0f} s")
        letters = Counter((topic, " ".join(error.split())) for topic, error in outcome.dead_letters)
        for (topic, error), count in letters.most_common(10):
            console.print(f"  {count} dead letter(s) on {topic}: {error[:400]}")
        if outcome.state == "stalled" and not outcome.dead_letters:
            console.print("  every queue drained without a report: is every service installed?")
        return 1
    assert outcome.report_json is not None and outcome.report_html is not None
    print_summary(json.loads(outcome.report_json.read_bytes()), console)
    console.print(f"[bold green]done[/] in {wall:.0f} s (wall time) · report: {outcome.report_html}")
    return 0


def print_claims(doc: dict[str, Any], console: Any) -> None:
    """The report's first section: each of the paper's claims with this study's verdict."""
    from rich import box
    from rich.table import Table

    if not doc.get("claims"):
        return
    table = Table(title="What the paper claims, and what this study shows", box=box.SIMPLE_HEAD,
                  pad_edge=False, show_lines=True)
    table.add_column("the paper claims", justify="left", ratio=2)
    table.add_column("this study shows", justify="left", ratio=3)
    table.add_column("verdict", justify="left", no_wrap=True)
    colour = {"reproduced": "green", "contradicted": "red", "inconclusive": "yellow"}
    for c in doc["claims"]:
        verdict = c["verdict"]
        table.add_row(c["paper"], c["this_study"], f"[{colour.get(verdict, 'white')}]{verdict}[/]")
    console.print(table)


def print_summary(doc: dict[str, Any], console: Any) -> None:
    """The claims table, the slope table (ID set, plain power law) and the findings."""
    from rich import box
    from rich.table import Table

    print_claims(doc, console)

    rows = [r for r in doc["slopes"] if r["eval_set"] == doc["id_set"] and r["form"] == "power_law"]
    max_ns = {r["max_n"] for r in rows}
    same_n = len(max_ns) == 1
    # One generator: say it once in the title, so each cell label fits 80 columns.
    generators = {r["label"].split("|")[0] for r in rows if "|" in r["label"]}
    prefix = f"{next(iter(generators))}|" if len(generators) == 1 else ""
    title = f"Scaling ability α on {doc['id_set']} (err = A·N^−α, binomial fit, 95% t-interval)"
    table = Table(title=title + (f"\ncells of generator {prefix[:-1]}" if prefix else ""),
                  box=box.SIMPLE_HEAD, pad_edge=False, caption="extrap.: relative error "
                  "predicting the largest N from a fit without it")
    # The series label is the cell (generator|cfg|strategy): it must fit 80 columns uncut.
    table.add_column("series", justify="left", overflow="fold")
    for col in ("α", "95% CI", f"err @ N={next(iter(max_ns))}" if same_n else "err @ max N", "extrap."):
        table.add_column(col, justify="right", no_wrap=True)
    for row in rows:
        chance = row.get("at_chance", False)
        ci = "at chance" if chance else f"[{_f(row['alpha_lo'])}, {_f(row['alpha_hi'])}]"
        err = _f(row["value_at_max_n"]) + ("" if same_n else f" @ {row['max_n']}")
        table.add_row(row["label"].removeprefix(prefix), "–" if chance else _f(row["alpha"]), ci, err,
                      _f(row["holdout_rel_error"]))
    console.print(table)
    for finding in doc["findings"]:
        console.print(f" • {finding}")


def _f(x: Any) -> str:
    return "–" if x is None else f"{x:.3f}"


def cmd_run(args: argparse.Namespace) -> int:
    return run_embedded(Path(args.file), Path(args.data_dir), not args.no_progress, args.verbose)


def cmd_validate(args: argparse.Namespace) -> int:
    from synscale.plan import plan_runs, study_classes
    from synscale.study import load_study

    spec = load_study(args.file)
    classes = study_classes(spec)
    runs = plan_runs(spec, "synscale")
    cells = sum(len(g.cfg) for g in spec.generators) * len(spec.strategies)
    images = cells * len(classes) * spec.max_images_per_class
    print(f"{args.file}: valid · study id {spec.study_id} · {len(classes)} classes · {cells} cells · "
          f"{images} images · {len(runs)} training runs")
    return 0


def demo_file(full: bool) -> Path:
    name = "demo-full.yaml" if full else "demo.yaml"
    for base in (Path.cwd() / "examples", REPO_ROOT / "examples"):
        if (base / name).is_file():
            return base / name
    raise InvalidInput("demo", f"examples/{name} not found (run from the repository root)")


def cmd_demo(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir or ("runs/demo-full" if args.full else "runs/demo"))
    if args.fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    return run_embedded(demo_file(args.full), data_dir, not args.no_progress, args.verbose)


# -- distributed (gRPC) ------------------------------------------------------------------
def _stub(address: str) -> Any:
    import grpc

    from synscale.v1 import study_pb2_grpc

    channel = grpc.insecure_channel(address)
    return study_pb2_grpc.AnalyzerStub(channel)


def _call(fn: Any, request: Any) -> Any:
    import grpc

    try:
        return fn(request, timeout=30)
    except grpc.RpcError as exc:
        code = exc.code().name if hasattr(exc, "code") else "ERROR"
        details = exc.details() if hasattr(exc, "details") else str(exc)
        print(f"synscale: {code}: {details}", file=sys.stderr)
        raise SystemExit(2) from None


def _print_status(status: Any) -> None:
    print(f"study {status.study_id}: {status.state}" + (f" ({status.error})" if status.error else ""))
    for s in status.stages:
        total = f"/{s.total}" if s.total else ""
        print(f"  {s.stage:<11} {s.done}{total}")
    if status.report.html_key:
        print(f"  report: s3://{status.report.bucket}/{status.report.html_key}")
    for r in status.reissued:  # what the reconciler re-issued, and why (ADR 0016)
        print(f"  re-issued {r.stage} ({r.count} message(s)) at {r.at}: {r.reason}")


def cmd_submit(args: argparse.Namespace) -> int:
    from synscale.study import load_study
    from synscale.v1 import study_pb2

    spec = load_study(args.file)  # validate locally first: errors name the field
    status = _call(_stub(args.address).SubmitStudy, study_pb2.SubmitStudyRequest(spec_yaml=spec.to_yaml()))
    _print_status(status)
    if args.watch:
        args.study_id = status.study_id
        return cmd_watch(args)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from synscale.v1 import study_pb2

    _print_status(_call(_stub(args.address).GetStatus, study_pb2.StudyRef(study_id=args.study_id)))
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    import grpc

    from synscale.embedded.progress import StageBars
    from synscale.v1 import study_pb2

    bars = StageBars(args.study_id)
    last = None
    try:
        with bars:
            for status in _stub(args.address).WatchStudy(study_pb2.StudyRef(study_id=args.study_id)):
                last = status
                for s in status.stages:
                    bars.update(s.stage, int(s.done), int(s.total))
    except grpc.RpcError as exc:
        print(f"synscale: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 2
    if last is not None:
        _print_status(last)
    return 0 if last is not None and last.state == "done" else 1


def cmd_report(args: argparse.Namespace) -> int:
    from synscale.v1 import study_pb2

    ready = _call(_stub(args.address).GetReport, study_pb2.StudyRef(study_id=args.study_id))
    for key in (ready.html_key, ready.markdown_key, ready.json_key):
        print(f"s3://{ready.bucket}/{key}")
    if args.download:
        n, where = download_report(args.study_id, ready.bucket, Path(args.download))
        print(f"downloaded {n} files from {where} to {args.download}")
    return 0


def download_report(study_id: str, bucket: str, out: Path) -> tuple[int, str]:
    """Copy a study's report files from the store the analyzer wrote them to.

    That store is S3 when S3_ENDPOINT is set (the distributed runtime), else the embedded
    FileStore under SYNSCALE_DATA_DIR; the bucket is the one the analyzer named.
    """
    from dataclasses import replace

    from synscale.config import RuntimeConfig, make_store

    cfg = RuntimeConfig.from_env()
    cfg = replace(cfg, bucket=bucket, runtime="distributed" if cfg.s3_endpoint else "embedded")
    store = make_store(cfg)
    prefix = layout.report_key(study_id, "x")[:-1]
    where = f"s3://{bucket}/{prefix} at {cfg.s3_endpoint}" if cfg.s3_endpoint else \
        f"{cfg.data_dir / 'store' / bucket / prefix}"
    keys = [info.key for info in store.list(prefix)]
    if not keys:
        raise InvalidInput("--download", f"no report files in {where}; set S3_ENDPOINT, S3_ACCESS_KEY and "
                           "S3_SECRET_KEY to the study's store (or SYNSCALE_DATA_DIR for an embedded one)")
    out.mkdir(parents=True, exist_ok=True)
    for key in keys:
        store.get_file(key, out / key[len(prefix):])
    return len(keys), where


def cmd_cancel(args: argparse.Namespace) -> int:
    from synscale.v1 import study_pb2

    _print_status(_call(_stub(args.address).CancelStudy, study_pb2.StudyRef(study_id=args.study_id)))
    return 0
