"""gRPC `synscale.v1.Prompter`: a thin adapter over builder/classes/strategies.

Bad input comes back as INVALID_ARGUMENT whose message starts with the field name
("n: must be in 1..100000, got 0"); synscale.grpc_server.grpc_errors does the mapping.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import grpc

from synscale.errors import InvalidInput
from synscale.grpc_server import ServiceBinding, grpc_errors
from synscale.runtime import ServiceContext
from synscale.v1 import prompter_pb2, prompter_pb2_grpc
from synscale_prompter.builder import build_prompts, prepare_strategy
from synscale_prompter.classes import CLASS_SET_INFO, ClassSet, get_class_set
from synscale_prompter.config import PrompterConfig
from synscale_prompter.strategies import REGISTRY, Strategy, StrategyOptions, namespace_for, strategy_names

MODEL_STRATEGY_CACHE = 4  # loaded language / captioning models kept per server


class PrompterServicer(prompter_pb2_grpc.PrompterServicer):
    def __init__(self, config: PrompterConfig | None = None, store: Any = None) -> None:
        self.config = config or PrompterConfig.from_env()
        self.store = store  # where model outputs are cached (None: the local cache dir)
        self._strategies: OrderedDict[tuple[Any, ...], Strategy] = OrderedDict()
        self._lock = threading.Lock()

    # -- validation --------------------------------------------------------------------
    def _class_set(self, request: prompter_pb2.BuildPromptsRequest) -> ClassSet:
        if not request.class_set:
            raise InvalidInput("class_set", f"is empty; known: {', '.join(CLASS_SET_INFO)}")
        custom = [
            {"id": c.id, "name": c.name, "description": c.description, "hypernym": c.hypernym}
            for c in request.classes
        ]
        if request.class_set != "custom" and custom:
            ids = [c["id"] for c in custom]
            return get_class_set(request.class_set, ids=[*request.class_ids, *ids])
        return get_class_set(request.class_set, custom=custom, ids=list(request.class_ids))

    def _check_counts(self, request: prompter_pb2.BuildPromptsRequest, classes: int) -> None:
        if request.n <= 0 or request.n > self.config.max_n:
            raise InvalidInput("n", f"must be in 1..{self.config.max_n}, got {request.n}")
        if request.n * classes > self.config.max_total:
            raise InvalidInput("n", f"{request.n} prompts x {classes} classes exceeds the limit of "
                                    f"{self.config.max_total} per call; restrict class_ids or lower n")
        if request.index_start < 0:
            raise InvalidInput("index_start", f"must be >= 0, got {request.index_start}")
        if request.word2sen_k < 0:
            raise InvalidInput("word2sen_k", f"must be >= 0, got {request.word2sen_k}")
        if request.captions_per_class < 0:
            raise InvalidInput("captions_per_class", f"must be >= 0, got {request.captions_per_class}")

    def _strategy(self, request: prompter_pb2.BuildPromptsRequest, class_set: ClassSet) -> Strategy:
        if request.strategy not in REGISTRY:
            raise InvalidInput("strategy", f"unknown strategy {request.strategy!r}; "
                                           f"known: {', '.join(strategy_names())}")
        options = StrategyOptions(
            class_set=request.class_set,
            word2sen_model=request.word2sen_model,
            word2sen_k=request.word2sen_k or 20,
            captioner_model=request.captioner_model,
            captions_per_class=request.captions_per_class or self.config.captions_per_class,
            real_path=request.real_path,
            cache=self.store,
        )
        if not REGISTRY[request.strategy].needs_model:
            return prepare_strategy(request.strategy, class_set, options)
        # Model-backed strategies hold a loaded model: keep a few alive between calls.
        key = (request.strategy, request.class_set, options.word2sen_model, options.word2sen_k,
               options.captioner_model, options.captions_per_class, options.real_path)
        with self._lock:
            strategy = self._strategies.pop(key, None)
            if strategy is None:
                strategy = prepare_strategy(request.strategy, class_set, options)
            self._strategies[key] = strategy
            while len(self._strategies) > MODEL_STRATEGY_CACHE:
                self._strategies.popitem(last=False)
        strategy.check(class_set)
        return strategy

    # -- rpcs ----------------------------------------------------------------------------
    @grpc_errors
    def BuildPrompts(self, request: prompter_pb2.BuildPromptsRequest,
                     context: grpc.ServicerContext) -> prompter_pb2.BuildPromptsResponse:
        if request.n <= 0:  # cheap checks before loading any class set
            raise InvalidInput("n", f"must be in 1..{self.config.max_n}, got {request.n}")
        if request.strategy not in REGISTRY:
            raise InvalidInput("strategy", f"unknown strategy {request.strategy!r}; "
                                           f"known: {', '.join(strategy_names())}")
        class_set = self._class_set(request)
        self._check_counts(request, len(class_set))
        strategy = self._strategy(request, class_set)
        namespace = namespace_for(request.study_id, request.seed)
        prompts = build_prompts(strategy, class_set, request.index_start, request.n, namespace)
        return prompter_pb2.BuildPromptsResponse(prompts=prompts)

    @grpc_errors
    def ListStrategies(self, request: prompter_pb2.ListStrategiesRequest,
                       context: grpc.ServicerContext) -> prompter_pb2.ListStrategiesResponse:
        return prompter_pb2.ListStrategiesResponse(strategies=[
            prompter_pb2.StrategyInfo(name=name, description=REGISTRY[name].description,
                                      needs_model=REGISTRY[name].needs_model)
            for name in strategy_names()
        ])

    @grpc_errors
    def ListClassSets(self, request: prompter_pb2.ListClassSetsRequest,
                      context: grpc.ServicerContext) -> prompter_pb2.ListClassSetsResponse:
        return prompter_pb2.ListClassSetsResponse(class_sets=[
            prompter_pb2.ClassSetInfo(name=name, num_classes=count, description=text)
            for name, (count, text) in CLASS_SET_INFO.items()
        ])


def bindings(ctx: ServiceContext, config: PrompterConfig | None = None) -> list[ServiceBinding]:
    servicer = PrompterServicer(config or PrompterConfig.from_env(), store=ctx.store)
    return [ServiceBinding(prompter_pb2_grpc.add_PrompterServicer_to_server, servicer,
                           "synscale.v1.Prompter")]
