"""The TrainJob's schema (and its JobSet fallback's), from the upstream CRDs; validation.

The trainer checks every TrainJob it renders before it submits it, so a rendering bug
is a clear error naming the field instead of an object the API server prunes silently
or the controller rejects minutes later. The schema is the CRD's openAPIV3Schema
(vendored in k8s/crds/kubeflow-trainer/, Kubeflow Trainer v2.3.0) made strict the way
the API server's `fieldValidation=Strict` is: an object with declared properties and no
`x-kubernetes-preserve-unknown-fields` admits no other field. Descriptions are dropped,
which keeps the packaged copy small; a unit test checks it is current
(`python -m synscale_trainer.trainjob_schema CRD.yaml` rewrites it). The JobSet CRD
(jobset.x-k8s.io/v1alpha2, v0.12.0, the version Kubeflow Trainer v2.3.0 builds on;
k8s/crds/jobset/) is packaged the same way for the fallback's rendering (`jobset.py`).
"""

from __future__ import annotations

import functools
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from synscale.errors import InvalidInput
from synscale_trainer.trainjob import KIND, VERSION

# kind -> (served version, packaged file)
SCHEMAS = {KIND: (VERSION, f"trainjob.{VERSION}.schema.json"),
           "JobSet": ("v1alpha2", "jobset.v1alpha2.schema.json")}
SCHEMA_FILE = SCHEMAS[KIND][1]
_MAX_REPORTED = 8


def strict_schema(crd: dict[str, Any], version: str | None = None) -> dict[str, Any]:
    """The version's openAPIV3Schema without descriptions, closed to unknown fields."""
    version = version or SCHEMAS[crd["spec"]["names"]["kind"]][0]
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            return _close(entry["schema"]["openAPIV3Schema"])
    raise KeyError(f"the CRD {crd['metadata']['name']} has no version {version}")


def _close(node: Any) -> Any:
    if isinstance(node, list):
        return [_close(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _close(v) for k, v in node.items() if k != "description"}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@functools.cache
def packaged_schema(kind: str = KIND) -> dict[str, Any]:
    """The schema of `kind` shipped with the trainer (the CRDs are not in its image)."""
    if kind not in SCHEMAS:
        raise InvalidInput("kind", f"no packaged schema for {kind!r}; known: {', '.join(SCHEMAS)}")
    text = resources.files("synscale_trainer").joinpath("schemas", SCHEMAS[kind][1]).read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def problems(manifest: dict[str, Any], schema: dict[str, Any] | None = None) -> list[str]:
    """Every schema violation of `manifest` (by its kind), as 'path: message', in order."""
    validator = jsonschema.Draft7Validator(schema or packaged_schema(manifest.get("kind", KIND)))
    errors = sorted(validator.iter_errors(manifest), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in errors]


def validate(manifest: dict[str, Any], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """`manifest` if it is a valid TrainJob; else InvalidInput listing what is wrong."""
    found = problems(manifest, schema)
    if found:
        shown = "; ".join(found[:_MAX_REPORTED])
        more = f" (and {len(found) - _MAX_REPORTED} more)" if len(found) > _MAX_REPORTED else ""
        raise InvalidInput("trainjob", f"not a valid {manifest.get('kind', 'TrainJob')}: {shown}{more}")
    return manifest


def dump(schema: dict[str, Any]) -> str:
    """The packaged file's text (sorted keys, one line: the diff of an update is the CRD's)."""
    return json.dumps(schema, sort_keys=True, separators=(",", ":")) + "\n"


def main(argv: list[str]) -> int:
    import yaml

    if len(argv) != 1:
        print("usage: python -m synscale_trainer.trainjob_schema PATH/CRD.yaml (TrainJob or JobSet)",
              file=sys.stderr)
        return 2
    crd = yaml.safe_load(Path(argv[0]).read_text())
    target = Path(__file__).parent / "schemas" / SCHEMAS[crd["spec"]["names"]["kind"]][1]
    target.parent.mkdir(exist_ok=True)
    target.write_text(dump(strict_schema(crd)))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
