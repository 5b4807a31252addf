#!/bin/sh
# Builder-stage helper shared by every service Dockerfile.
#
#   build-wheels.sh WHEEL_DIR PROJECT_DIR...
#
# Builds wheels for the given local projects (shared/, services/<svc>/) and for every
# dependency they pull in, all resolved against the repository's constraints.txt, so the
# image carries exactly the versions CI tested. The runtime stage then installs from
# WHEEL_DIR with --no-index: no network and no compiler in the shipped image.
set -eu
wheel_dir="$1"
shift
[ "$#" -gt 0 ] || { echo "usage: build-wheels.sh WHEEL_DIR PROJECT_DIR..." >&2; exit 2; }
[ -f constraints.txt ] || { echo "build-wheels.sh: run from the repository root (constraints.txt)" >&2; exit 2; }
python -m pip wheel --no-cache-dir -c constraints.txt --wheel-dir "$wheel_dir" "$@"
