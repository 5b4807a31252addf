"""`synscale prompts ...`: inspect class sets and strategies, print prompts.

    synscale prompts show --classes imagenet --strategy classname_hypernym --class n01440764 --n 5
    synscale prompts show --classes my_classes.yaml --strategy classname --n 3
    synscale prompts strategies
    synscale prompts classsets
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synscale_prompter.builder import build_prompts, prepare_strategy
from synscale_prompter.classes import BUILTIN, CLASS_SET_INFO, ClassSet, get_class_set
from synscale_prompter.config import PrompterConfig
from synscale_prompter.strategies import REGISTRY, StrategyOptions, namespace_for, strategy_names


def _class_set(spec: str, ids: list[str] | None) -> ClassSet:
    if spec in BUILTIN:
        return get_class_set(spec, ids=ids, field="--classes")
    if Path(spec).suffix.lower() in {".yaml", ".yml", ".csv"}:
        return get_class_set("custom", file=spec, ids=ids, field="--classes")
    return get_class_set(spec, ids=ids, field="--classes")  # raises, naming the known sets


def cmd_show(args: argparse.Namespace) -> int:
    class_set = _class_set(args.classes, args.class_ids)
    options = StrategyOptions(
        word2sen_model=args.word2sen_model or "", word2sen_k=args.word2sen_k,
        captioner_model=args.captioner_model or "",
        captions_per_class=args.captions_per_class or PrompterConfig.from_env().captions_per_class,
        real_path=args.real_path or "")
    strategy = prepare_strategy(args.strategy, class_set, options, field="--strategy")
    namespace = namespace_for(args.study_id or "", args.seed)
    for p in build_prompts(strategy, class_set, args.start, args.n, namespace):
        print(f"{p.class_id}\t{p.index}\t{p.text}")
    return 0


def cmd_strategies(args: argparse.Namespace) -> int:
    for name in strategy_names():
        cls = REGISTRY[name]
        print(f"{name:<22} {'model' if cls.needs_model else '-':<6} {cls.description}")
    return 0


def cmd_classsets(args: argparse.Namespace) -> int:
    for name, (count, text) in CLASS_SET_INFO.items():
        print(f"{name:<14} {count if count else 'any':>5}  {text}")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    prompts = subparsers.add_parser("prompts", help="class sets, prompt strategies and prompts")
    sub = prompts.add_subparsers(dest="prompts_command", metavar="COMMAND")

    show = sub.add_parser("show", help="print the prompts of a strategy for some classes")
    show.add_argument("--classes", default="fashion-mnist",
                      help="imagenet | fashion-mnist | a custom list (.yaml/.yml/.csv)")
    show.add_argument("--strategy", default="classname", help=", ".join(strategy_names()))
    show.add_argument("--class", dest="class_ids", action="append", metavar="ID",
                      help="class id (repeatable; default: every class)")
    show.add_argument("--n", type=_positive, default=5, help="prompts per class")
    show.add_argument("--start", type=int, default=0, help="first image index")
    show.add_argument("--seed", type=int, default=0, help="draw namespace 'seed-<n>' (no --study-id)")
    show.add_argument("--study-id", help="draw as this study does (its generation jobs' prompts)")
    show.add_argument("--word2sen-model", help="word2sen: local transformers model directory")
    show.add_argument("--word2sen-k", type=_positive, default=20, help="word2sen: sentences per class")
    show.add_argument("--captioner-model", help="in_captions: local image-to-text model directory")
    show.add_argument("--captions-per-class", type=_positive, help="in_captions: images captioned per class")
    show.add_argument("--real-path", help="in_captions: ImageFolder root <path>/<class id>/")
    show.set_defaults(func=cmd_show)

    sub.add_parser("strategies", help="list the prompt strategies").set_defaults(func=cmd_strategies)
    sub.add_parser("classsets", help="list the class sets").set_defaults(func=cmd_classsets)
    prompts.set_defaults(func=lambda _args: (prompts.print_help(), 2)[1])
