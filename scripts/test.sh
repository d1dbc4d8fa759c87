#!/usr/bin/env bash
# weft's test command: installs what is missing, checks formatting, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x /opt/swift/usr/bin/swift ]] && export PATH="/opt/swift/usr/bin:$PATH"

bash scripts/install-deps.sh

echo "== swift format lint"
swift format lint --strict --recursive --parallel Sources Tests Package.swift

echo "== swift build"
swift build --build-tests

echo "== swift test"
swift test
