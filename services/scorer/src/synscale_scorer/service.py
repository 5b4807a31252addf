"""The scorer's domain service: partials per shard, aggregation per cell, outputs, events.

Both adapters (Kafka worker, gRPC servicer) and the CLI call this class; it only needs an
ObjectStore and, to publish, a ServiceContext. Idempotence comes from deterministic
keys and bytes: a shard's partial lives at `score_key(..., "partials/<name>.npz")`
where <name> = `<class>-<seed_start:09d>-<seed_count:06d>` (so the set of partials alone
tells which seed ranges are scored), and outputs are written with put_if_changed.

Completion rule: the cell is complete when, for every class of the study, the seed
ranges of its partials cover 0..N-1 with N = max(images_per_class) of the study stored
at `studies/<study>/study.yaml`. Shard sizes never need to be known in advance.
Per event the rule is applied incrementally (`progress.ProgressBook`, ADR 0028): the cell's
partials are listed once to seed it and again only when it looks complete; a study's spec
and plans are parsed once per study id (the id is the spec's digest, so they never change).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from synscale import ids, layout
from synscale.errors import InvalidInput, PreconditionFailed
from synscale.store.base import ObjectStore
from synscale.study import StudySpec, parse_study
from synscale_scorer.aggregate import CellAggregator
from synscale_scorer.partial import ShardPartial
from synscale_scorer.plan import Cell, CellPlan, ScoringOptions, plan_from_spec
from synscale_scorer.progress import DEFAULT_RELIST_S, ProgressBook
from synscale_scorer.real import RealFeatureCache, source_for
from synscale_scorer.report import CellScores
from synscale_scorer.scoring import Networks, score_shard_bytes

log = logging.getLogger(__name__)
SHARD_SHA_META = "shard-sha256"
PLAN_META = "plan-fingerprint"


def partial_fingerprint(plan: CellPlan) -> str:
    """What a stored partial depends on besides the shard bytes: reuse it only if equal."""
    o = plan.options
    return ids.digest(list(plan.class_ids), dict(plan.per_class), o.recognizability, o.diversity,
                      o.fid, o.lpips, o.lpips_pairs, o.fid_samples_per_class, o.rows_threshold,
                      plan.image_mode, list(plan.image_size or ()), plan.study_id, str(plan.cell))


@dataclass(frozen=True)
class ShardInfo:
    """What the scorer needs from a ShardRef (or a shard found in the store)."""

    key: str
    class_id: str
    seed_start: int
    seed_count: int
    sha256: str = ""
    count: int = 0

    @property
    def name(self) -> str:
        return partial_name(self.class_id, self.seed_start, self.seed_count)

    @classmethod
    def of_ref(cls, ref: Any, field: str = "shard") -> ShardInfo:
        """From a synscale.v1 ShardRef; errors name `field` (e.g. "shards[2]")."""
        job = ref.job
        if not ref.key:
            raise InvalidInput(f"{field}.key", "is empty")
        if not job.class_id:
            raise InvalidInput(f"{field}.job.class_id", "is empty")
        if job.seed_count <= 0 or job.seed_start < 0:
            raise InvalidInput(f"{field}.job", f"bad seed range {job.seed_start}+{job.seed_count}")
        return cls(ref.key, job.class_id, int(job.seed_start), int(job.seed_count), ref.sha256,
                   int(ref.count))


partial_name = layout.partial_name


study_key = layout.spec_key  # the analyzer stores the study there (synscale.layout)


class NetworkCache:
    """Loads each model once per process (they are large) and picks the reference.

    Reference selection: SYNSCALE_SCORER_REFERENCE = `embedded` | `torchvision:<arch>:<path>`
    | `timm:<arch>:<path>` | `open_clip:<model>:<checkpoint>[:<config.json>]`; unset, a
    Fashion-MNIST study uses the embedded CNN and other class sets score without one.
    """

    def __init__(self, env: Mapping[str, str] | None = None,
                 preloaded: Mapping[str, Any] | None = None) -> None:
        """`preloaded` maps cache keys ("ref:embedded", "inception", "lpips:alex") to
        ready models — how tests and benchmarks inject small ones."""
        self.env = dict(os.environ if env is None else env)
        self._lock = threading.Lock()
        self._models: dict[str, Any] = dict(preloaded or {})

    def _get(self, key: str, build: Any) -> Any:
        with self._lock:
            if key not in self._models:
                self._models[key] = build()
            return self._models[key]

    def reference(self, plan: CellPlan) -> Any:
        spec = self.env.get("SYNSCALE_SCORER_REFERENCE", "")
        if not spec:
            if plan.class_set != "fashion-mnist":
                return None
            spec = "embedded"
        kind, _, rest = spec.partition(":")
        if kind == "embedded":
            from synscale_scorer.reference.fashion import EmbeddedReference

            return self._get("ref:embedded", EmbeddedReference)
        parts = rest.split(":")
        if kind in ("torchvision", "timm") and len(parts) == 2:
            from synscale_scorer.reference import imagenet

            build = imagenet.torchvision_reference if kind == "torchvision" else imagenet.timm_reference
            return self._get(f"ref:{spec}", lambda: build(parts[0], Path(parts[1]).expanduser()))
        if kind == "open_clip" and len(parts) in (2, 3):
            from synscale_scorer.reference.imagenet import open_clip_reference

            cfg = Path(parts[2]) if len(parts) == 3 else None
            names = plan.class_names or plan.class_ids
            return self._get(
                f"ref:{spec}:{ids.digest(list(plan.class_ids))}",
                lambda: open_clip_reference(parts[0], Path(parts[1]), plan.class_ids, names, config=cfg),
            )
        raise InvalidInput("SYNSCALE_SCORER_REFERENCE", f"cannot parse {spec!r}")

    def networks(self, plan: CellPlan) -> Networks:
        from synscale_scorer.inception import EXTRACTOR_ID, FEATURE_DIM

        opts = plan.options
        want_ref = opts.recognizability or opts.diversity
        inception = self.inception() if opts.fid else None
        return Networks(
            reference=self.reference(plan) if want_ref else None,
            inception=inception,
            inception_dim=int(getattr(inception, "num_features", FEATURE_DIM)),
            extractor_id=str(getattr(inception, "extractor_id", EXTRACTOR_ID)),
            lpips=self.lpips(opts.lpips_net) if opts.lpips else None,
        )

    def inception(self) -> Any:
        from synscale_scorer.inception import InceptionFeatures

        return self._get("inception", InceptionFeatures)

    def lpips(self, net: str) -> Any:
        from synscale_scorer.perceptual import build_lpips

        return self._get(f"lpips:{net}", lambda: build_lpips(net))


class ScorerService:
    def __init__(self, store: ObjectStore, networks: NetworkCache | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.store = store
        self.nets = networks or NetworkCache(env)
        self.env = dict(os.environ if env is None else env)
        relist = self.env.get("SYNSCALE_SCORER_RELIST_S", "")
        try:
            relist_s = float(relist) if relist else DEFAULT_RELIST_S
        except ValueError:
            raise InvalidInput("SYNSCALE_SCORER_RELIST_S", f"not a number of seconds: {relist!r}") from None
        self.progress = ProgressBook(relist_s)
        self._plans_lock = threading.Lock()
        self._specs: dict[str, StudySpec] = {}
        self._plans: dict[tuple[str, Cell], CellPlan] = {}

    # -- plans -------------------------------------------------------------------------
    def load_study(self, study_id: str) -> StudySpec:
        """The stored spec, parsed once per study id (the id is its content digest)."""
        with self._plans_lock:
            spec = self._specs.get(study_id)
        if spec is not None:
            return spec
        key = study_key(study_id)
        if not self.store.exists(key):
            raise PreconditionFailed(f"study {study_id} has no {key} in bucket {self.store.bucket}")
        spec = parse_study(self.store.get(key).decode(), key)
        with self._plans_lock:
            return self._specs.setdefault(study_id, spec)

    def plan(self, study_id: str, cell: Cell) -> CellPlan:
        """The cell's plan, built once per (study id, cell) in this process."""
        with self._plans_lock:
            plan = self._plans.get((study_id, cell))
        if plan is None:
            plan = plan_from_spec(self.load_study(study_id), study_id, cell, self.env)
            with self._plans_lock:
                plan = self._plans.setdefault((study_id, cell), plan)
        return plan

    def plan_from_shards(self, study_id: str, cell: Cell, shards: list[ShardInfo],
                         options: ScoringOptions | None = None) -> CellPlan:
        """Without a stored study: classes and N per class from the shards' seed ranges."""
        from synscale.datasets import fashion_mnist

        per_class: dict[str, int] = {}
        for s in shards:
            per_class[s.class_id] = max(per_class.get(s.class_id, 0), s.seed_start + s.seed_count)
        if set(per_class) <= set(fashion_mnist.CLASS_IDS):
            class_ids = tuple(c for c in fashion_mnist.CLASS_IDS if c in per_class)
            class_set, names = "fashion-mnist", tuple(
                n for c, n in fashion_mnist.CLASSES if c in per_class)
        else:
            class_ids, class_set, names = tuple(sorted(per_class)), "custom", ()
        return CellPlan(study_id=study_id, cell=cell, class_ids=class_ids, per_class=per_class,
                        options=options or ScoringOptions.from_spec(None, self.env), class_names=names,
                        class_set=class_set,
                        real_set="fashion-mnist" if class_set == "fashion-mnist" else "none")

    def real_cache(self, plan: CellPlan, nets: Networks) -> RealFeatureCache | None:
        if not plan.options.fid or nets.inception is None:
            return None
        source = source_for(plan.real_set, plan.real_path)
        if source is None:
            return None
        return RealFeatureCache(self.store, source, nets.inception, nets.extractor_id,
                                plan.options.fid_samples_per_class)

    # -- partials ----------------------------------------------------------------------
    def partial_key(self, plan: CellPlan, name: str) -> str:
        return plan.key(f"partials/{name}.npz")

    def ensure_partial(self, plan: CellPlan, shard: ShardInfo, data: bytes | None = None) -> bool:
        """Compute and store the shard's partial unless one for the same bytes exists.
        Returns whether a partial was (re)written."""
        key = self.partial_key(plan, shard.name)
        info = self.store.stat(key)
        fingerprint = partial_fingerprint(plan)
        if (info is not None and shard.sha256 and info.metadata.get(SHARD_SHA_META) == shard.sha256
                and info.metadata.get(PLAN_META) == fingerprint):
            return False
        if data is None:
            data = self.store.get(shard.key)
        actual = hashlib.sha256(data).hexdigest()
        if shard.sha256 and actual != shard.sha256:
            log.warning("shard %s: sha256 %s differs from the announced %s; scoring the stored bytes",
                        shard.key, actual[:12], shard.sha256[:12])
        partial = self.compute_partial(plan, shard, data)
        _, wrote = self.store.put_if_changed(
            key, partial.to_bytes(), metadata={SHARD_SHA_META: actual, PLAN_META: fingerprint})
        return wrote

    def compute_partial(self, plan: CellPlan, shard: ShardInfo, data: bytes) -> ShardPartial:
        nets = self.nets.networks(plan)
        partial = score_shard_bytes(plan, nets, data, shard.key, hashlib.sha256(data).hexdigest())
        seen = partial.scored + partial.skipped
        expected = shard.count or shard.seed_count
        if expected > seen:
            partial.skipped += expected - seen
            partial.problems.append({"shard": shard.key, "key": "<shard>",
                                     "reason": f"{expected - seen} of {expected} samples missing"})
        try:
            from synscale.metrics import record_images

            record_images(partial.scored, "scored")
        except Exception:  # metrics are optional; scoring is not
            log.debug("could not record metrics", exc_info=True)
        return partial

    def partial_names(self, plan: CellPlan) -> list[str]:
        prefix = self.partial_key(plan, "x").rsplit("/", 1)[0] + "/"
        return sorted(o.key[len(prefix):-4] for o in self.store.list(prefix) if o.key.endswith(".npz"))

    def note_partial(self, plan: CellPlan, shard: ShardInfo) -> bool:
        """Record that `shard`'s partial exists; whether the cell now looks complete.

        One event's worth of work (ADR 0028): a listing only seeds the cell's view the
        first time and refreshes a stale incomplete one. "Looks complete" is confirmed by
        `complete(plan, partial_names(plan))` before aggregating.
        """
        expected = {c: plan.expected(c) for c in plan.class_ids}
        return self.progress.note(plan.study_id, plan.cell, expected, shard.class_id, shard.seed_start,
                                  shard.seed_count, lambda: self.partial_names(plan))

    def complete(self, plan: CellPlan, names: list[str] | None = None) -> bool:
        by_safe = {ids.safe_component(c): c for c in plan.class_ids}
        ranges: dict[str, list[tuple[int, int]]] = {c: [] for c in plan.class_ids}
        for name in names if names is not None else self.partial_names(plan):
            parsed = layout.parse_partial_name(name)
            if parsed is not None and parsed[0] in by_safe:
                ranges[by_safe[parsed[0]]].append(parsed[1:])
        return all(layout.covers(ranges[c], plan.expected(c)) for c in plan.class_ids)

    # -- aggregation and outputs -------------------------------------------------------
    def aggregate(self, plan: CellPlan, names: list[str] | None = None) -> CellScores:
        nets = self.nets.networks(plan)
        agg = CellAggregator(plan, self.real_cache(plan, nets), nets.lpips)
        for name in sorted(names if names is not None else self.partial_names(plan)):
            agg.add(ShardPartial.from_bytes(self.store.get(self.partial_key(plan, name))))
        return agg.finish()

    def write_outputs(self, plan: CellPlan, scores: CellScores) -> tuple[Any, bool]:
        """scores.json + table.csv (put_if_changed); returns (ScoreResult, json rewritten)."""
        json_key, table_key = plan.key("scores.json"), plan.key("table.csv")
        _, wrote = self.store.put_if_changed(json_key, scores.to_json(), content_type="application/json")
        self.store.put_if_changed(table_key, scores.to_csv(), content_type="text/csv")
        return scores.to_proto(self.store.bucket, json_key, table_key), wrote

    def score_shards(self, plan: CellPlan, shards: list[ShardInfo]) -> tuple[CellScores, Any]:
        """Partials for these shards (reusing stored ones), then the cell over exactly them."""
        if not shards:
            raise InvalidInput("shards", "at least one shard is needed")
        for s in shards:
            self.ensure_partial(plan, s)
        scores = self.aggregate(plan, sorted({s.name for s in shards}))
        result, _ = self.write_outputs(plan, scores)
        return scores, result

    def get_scores(self, study_id: str, cell: Cell) -> tuple[CellScores, Any]:
        json_key = layout.score_key(study_id, cell.generator, cell.cfg, cell.strategy, "scores.json")
        scores = CellScores.from_json(self.store.get(json_key))  # ObjectNotFound is a KeyError
        table_key = layout.score_key(study_id, cell.generator, cell.cfg, cell.strategy, "table.csv")
        return scores, scores.to_proto(self.store.bucket, json_key, table_key)

    def shards_in_store(self, study_id: str, cell: Cell) -> list[ShardInfo]:
        """The cell's shards as the generator laid them out: <prefix>/<class>/<start>-<count>.tar."""
        prefix = layout.cell_prefix(study_id, cell.generator, cell.cfg, cell.strategy)
        out = []
        for obj in self.store.list(prefix):
            parsed = layout.parse_shard_in_cell(prefix, obj.key)
            if parsed is None:
                continue
            cls_part, start, count = parsed
            out.append(ShardInfo(obj.key, cls_part, start, count, obj.sha256))
        return out

    def with_options(self, plan: CellPlan, **changes: Any) -> CellPlan:
        return replace(plan, options=replace(plan.options, **changes))
