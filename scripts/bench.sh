#!/usr/bin/env bash
# weft's benchmark: every scenario with weft and its baselines in the same run (see
# docs/BENCHMARKS.md). Installs what it needs, builds a release binary, then runs
# scripts/bench/bench.py with these arguments. Needs root (network namespaces).
#
#   sudo scripts/bench.sh                          everything (about 10 minutes)
#   sudo scripts/bench.sh loopback latency         some scenarios
#   sudo scripts/bench.sh --smoke                  every scenario, briefly
#
# Results: bench-results/results.json and bench-results/failover.png (or --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x /opt/swift/usr/bin/swift ]] && export PATH="/opt/swift/usr/bin:$PATH"
if [[ $(id -u) -ne 0 ]]; then
    echo "bench: the network lab needs root (network namespaces); run it with sudo" >&2
    exit 77
fi
bash scripts/install-deps.sh
swift build -c release --product weft
# weft-bench's tls-relay: the SwiftNIO TLS pair measured beside the stunnel pair.
swift build -c release --product weft-bench
exec /usr/bin/python3 scripts/bench/bench.py "$@"
