#!/usr/bin/env bash
# A real two-site demo on this machine: a private mosquitto broker, site A exposing an HTTP
# server and redis (listening only on a Unix socket), site B using both over TCP through a
# weft tunnel. Prints what happens, then stops everything and removes what it made.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x /opt/swift/usr/bin/swift ]] && export PATH="/opt/swift/usr/bin:$PATH"

bash scripts/install-deps.sh
echo "== building weft (swift build)"
swift build --product weft 2>&1 | tail -1
weft="$PWD/.build/debug/weft"

work=$(mktemp -d /tmp/weft-demo.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
    echo "== cleaned up (processes stopped, $work removed)"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for() { # seconds, command...
    local deadline=$((SECONDS + $1)); shift
    until "$@" 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "demo: timed out waiting for: $*" >&2; return 1; }
        sleep 0.1
    done
}

broker=$(free_port); http=$(free_port); linka=$(free_port); linkb=$(free_port)
web=$(free_port); cache=$(free_port); api=$(free_port); web2=$(free_port); apia=$(free_port)
mkdir -p "$work/www"

echo "== starting a private mosquitto broker on 127.0.0.1:$broker"
mosquitto -p "$broker" >"$work/mosquitto.log" 2>&1 &
pids+=($!)
echo "== site A's apps: an HTTP server on 127.0.0.1:$http and redis on unix:$work/redis.sock"
head -c $((32 << 20)) /dev/urandom >"$work/www/payload.bin"
echo "hello from site A" >"$work/www/index.html"
python3 -m http.server "$http" --bind 127.0.0.1 --directory "$work/www" >"$work/http.log" 2>&1 &
pids+=($!)
redis-server --port 0 --unixsocket "$work/redis.sock" --save "" --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)

site() { # name linkPort exposed remote
    cat >"$work/$1.yaml" <<YAML
siteName: $1
crypto:
  key: "weft-demo-$(basename "$work")"
logger:
  level: info
  file: $work/$1.log
messageChannel:
  mqtt:
    brokerServer: mqtt://127.0.0.1:$broker
tunnel:
  localSockets:
  - mode: dedicated-address
    listenAddress: 127.0.0.1
    listenPort: $2
stateDir: $work/$1-state
$3
$4
YAML
}
site site-a "$linka" "localExposedApps:
- appName: web
  appSocket: tcp:127.0.0.1:$http
- appName: cache
  appSocket: unix:$work/redis.sock
restfulApi:
  enabled: true
  listenAddr: 127.0.0.1:$apia" ""
site site-b "$linkb" "" "remoteApps:
- siteName: site-a
  appName: web
  localSocket: tcp:127.0.0.1:$web
- siteName: site-a
  appName: cache
  localSocket: tcp:127.0.0.1:$cache
restfulApi:
  enabled: true
  listenAddr: 127.0.0.1:$api"

wait_for 10 test -S "$work/redis.sock"
echo "== starting site-a and site-b (weft run)"
"$weft" run --config "$work/site-a.yaml" &
pids+=($!)
"$weft" run --config "$work/site-b.yaml" &
pids+=($!)
wait_for 20 grep -q "link up" "$work/site-b.log"
grep -h -E "peer up|tunnel created|link up" "$work/site-b.log" | sed 's/^/   site-b: /'

echo "== through the tunnel: site B's 127.0.0.1:$web is site A's HTTP server"
echo "   GET /index.html → $(curl -sS --max-time 10 "http://127.0.0.1:$web/index.html")"
start=$(date +%s.%N)
curl -sS --max-time 120 -o "$work/fetched.bin" "http://127.0.0.1:$web/payload.bin"
elapsed=$(python3 -c "print(f'{$(date +%s.%N) - $start:.2f}')")
sent=$(sha256sum <"$work/www/payload.bin" | cut -c1-16)
got=$(sha256sum <"$work/fetched.bin" | cut -c1-16)
echo "   GET /payload.bin → 32 MiB in ${elapsed} s; sha256 at A ${sent}…, at B ${got}… $([[ $sent == "$got" ]] && echo "(equal)" || echo "(DIFFERENT)")"

echo "== through the tunnel: site B's 127.0.0.1:$cache is site A's redis, which listens only on a Unix socket"
echo "   SET weft woven → $(redis-cli -h 127.0.0.1 -p "$cache" SET weft woven)"
echo "   GET weft → $(redis-cli -h 127.0.0.1 -p "$cache" GET weft)"
echo "   redis's own view: $(redis-cli -s "$work/redis.sock" GET weft) (read at site A over the Unix socket)"

echo "== weft status (site B's REST API on 127.0.0.1:$api; its dashboard is at http://127.0.0.1:$api/)"
wait_for 10 "$weft" status --config "$work/site-b.yaml" >/dev/null
"$weft" status --config "$work/site-b.yaml" | sed 's/^/   /'
echo "== weft speedtest: generated data through the tunnel for 2 s, every byte checked at site A"
"$weft" speedtest --config "$work/site-b.yaml" --site site-a --seconds 2 | sed 's/^/   /'
echo "== an app added at runtime over the REST APIs: exposed at site A, used at site B"
post() { # url json
    curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' "$1" -d "$2"
}
echo "   site-a POST /api/v1/localExposedApps → HTTP $(post "http://127.0.0.1:$apia/api/v1/localExposedApps" \
    "{\"appName\": \"docs\", \"appSocket\": \"tcp:127.0.0.1:$http\"}")"
echo "   site-b POST /api/v1/remoteApps → HTTP $(post "http://127.0.0.1:$api/api/v1/remoteApps" \
    "{\"siteName\": \"site-a\", \"appName\": \"docs\", \"localSocket\": \"tcp:127.0.0.1:$web2\"}")"
echo "   GET /index.html via site B's new 127.0.0.1:$web2 → $(curl -sS --max-time 30 --retry 5 --retry-connrefused --retry-delay 1 \
    "http://127.0.0.1:$web2/index.html")"

echo "== stopping the sites (SIGTERM: goodbye on the tunnel and the message channel)"
for pid in "${pids[@]:3}"; do kill -TERM "$pid"; done
wait_for 10 grep -q "site stopping" "$work/site-b.log"
grep -h -E "closing tunnel|peer down|site stopping" "$work/site-a.log" "$work/site-b.log" | sed 's/^/   /' | head -6
[[ $sent == "$got" ]]
