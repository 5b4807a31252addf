#!/usr/bin/env bash
# Debian packages synscale needs beside Python: the offline data (Fashion-MNIST, WordNet)
# and Chromium (the report's render test). Installs what is missing when run as root on
# Debian; otherwise prints the command and fails, so nothing is silently skipped.
set -euo pipefail
need=()
[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
[ -e /usr/share/wordnet/data.noun ] || need+=(wordnet-base)
[ -e /usr/share/wordnet/index.sense ] || need+=(wordnet-sense-index)
command -v openssl >/dev/null || need+=(openssl)  # the test kube-apiserver's certificates
if [ "${SYNSCALE_NO_BROWSER:-0}" != 1 ]; then
  command -v chromium >/dev/null || need+=(chromium)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "[system-deps] installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "missing system packages: ${need[*]} — run: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
