"""A trainer process the test kills: it submits (or re-attaches to) a run's TrainJob and waits.

    python trainer_proc.py STORE_ROOT JOB_JSON

Built the way the service builds it (`runs.trainjob_runner` from SYNSCALE_TRAINJOB_*
and KUBECONFIG), so killing it is killing the trainer's pod mid-run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from synscale import codecs
from synscale.store.file import FileStore
from synscale_trainer.runs import RunManager, trainjob_runner
from synscale_trainer.train import TrainOptions


def main(store_root: str, job_json: str) -> int:
    store = FileStore(store_root, "synscale")
    job = codecs.training_job_from_json(Path(job_json).read_bytes())
    manager = RunManager(store, TrainOptions(), remote=trainjob_runner(store))
    result = manager.run(job)
    print(f"finished: {result.status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
