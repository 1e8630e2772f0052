#!/usr/bin/env bash
# Regenerates testdata/antom (the test key pairs and vectors.json) with Antom's
# official Python SDK, installed from PyPI into a throwaway virtual environment
# that is removed afterwards. Needs python3 with the venv module (Debian:
# python3-venv) and access to PyPI.
#
#   scripts/antom-vectors/regenerate.sh              # same keys, vectors again (identical output)
#   scripts/antom-vectors/regenerate.sh --new-keys   # new test key pairs, new signatures
#   scripts/antom-vectors/regenerate.sh --demo-keys  # also new key pairs in deploy/demo-keys
set -euo pipefail

# The SDK release the committed vectors were made with; change it here only to
# re-check against a newer SDK (the vectors must come out the same).
SDK_VERSION=1.7.1

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
args=(--out "$repo/testdata/antom")
for arg in "$@"; do
  case "$arg" in
    --new-keys) args+=(--new-keys) ;;
    --demo-keys) args+=(--demo-keys "$repo/deploy/demo-keys") ;;
    *) echo "usage: $0 [--new-keys] [--demo-keys]" >&2; exit 2 ;;
  esac
done

venv="$(mktemp -d)"
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "global-open-sdk-python==$SDK_VERSION"
"$venv/bin/python" "$here/generate.py" "${args[@]}"
