#!/usr/bin/env bash
# make compose-test: brings docker-compose.yml up under podman with the
# stand-ins of compose.override.yml, plays the demo's merchant story through
# it (services/sfsync/internal/composestory), checks that every container is
# healthy, that the broker refuses clients without credentials and that the
# error report reached the mail catcher, and tears everything down. Exits
# non-zero with the reason when anything is off.
#
# Needs a Debian bookworm machine (setup.sh installs podman and configures
# it) and Go; no container registry. Heavy parts run once and are kept: the
# Debian base image (mmdebstrap), the stand-in images (podman's layer cache)
# and the Docker Compose binary (bin/tools).
#
# Variables: COMPOSE_VERSION (Docker Compose module version to build),
# CT_KEEP=1 leaves the stack up after a failure, for a look.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
here=deployments/compose-test

project=sfsync-compose-test
prefix=localhost/$project
compose_version=${COMPOSE_VERSION:-v5.6.0}
work=${CT_WORK:-/var/tmp/$project}
began=$(date +%s)

say() { printf '\n== %s (t+%ss)\n' "$*" "$(( $(date +%s) - began ))"; }
fail() { echo "compose-test: FAIL: $*" >&2; exit 1; }

# Rootful podman: its networks (netavark) and the cgroupfs manager as
# configured by setup.sh.
[ "$(id -u)" = 0 ] || fail "run as root (sudo make compose-test): the test uses rootful podman"

say "podman"
"$here/setup.sh"
mkdir -p "$work" bin/tools

# Docker Compose, built from its Go module (its go.mod has exclude
# directives, so `go install pkg@version` refuses it: build inside a copy).
compose=$root/bin/tools/docker-compose-$compose_version
if [ ! -x "$compose" ]; then
  say "docker compose $compose_version (built once)"
  src=$(go mod download -json "github.com/docker/compose/v5@$compose_version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$src" ] || fail "go mod download github.com/docker/compose/v5@$compose_version"
  rm -rf "$work/compose-src" && cp -r "$src" "$work/compose-src" && chmod -R u+w "$work/compose-src"
  (cd "$work/compose-src" && GOWORK=off CGO_ENABLED=0 go build -trimpath -o "$compose.tmp" ./cmd) && mv "$compose.tmp" "$compose"
  rm -rf "$work/compose-src"
fi

say "binaries"
make --no-print-directory build >/dev/null
ctx=$work/context
rm -rf "$ctx" && mkdir -p "$ctx"
cp bin/detector bin/sender bin/ticketpoller bin/sfsandbox bin/sfsync "$ctx/"
(cd pkg && CGO_ENABLED=0 go build -trimpath -o "$ctx/mailsink" ./internal/mailsink/cmd/mailsink)
(cd services/sfsync && go build -o "$work/composestory" ./internal/composestory)

say "images"
base=$prefix/debian:bookworm
if ! podman image exists "$base"; then
  echo "debian bookworm base image: mmdebstrap (once)"
  mmdebstrap --quiet --variant=minbase --include=ca-certificates,tzdata bookworm "$work/rootfs.tar"
  podman import -q "$work/rootfs.tar" "$base" >/dev/null
  rm -f "$work/rootfs.tar"
fi
build() { # tag containerfile [build-arg...]
  local tag=$1 file=$2; shift 2
  local args=(--build-arg "BASE=$base")
  for a in "$@"; do args+=(--build-arg "$a"); done
  podman build -q --network host "${args[@]}" -f "$here/$file" -t "$tag" "$ctx" >/dev/null 2>"$work/build.log" ||
    { cat "$work/build.log" >&2; fail "podman build $tag"; }
  echo "  $tag"
}
cp "$here/mysql-entrypoint.sh" "$ctx/"
build "$prefix/mysql:standin" Containerfile.mysql
build "$prefix/nats:standin" Containerfile.nats
build "$prefix/mailpit:standin" Containerfile.mailsink
for s in sfsync sfsandbox detector sender ticketpoller; do
  build "$prefix/$s:test" Containerfile.sfsync "SERVICE=$s"
done

# podman's Docker-compatible API, for docker compose, on a socket of ours.
sock=$work/podman.sock
podman system service --time=0 "unix://$sock" >"$work/podman-service.log" 2>&1 &
service_pid=$!
export DOCKER_HOST=unix://$sock
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || fail "podman system service did not open $sock"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export CT_MYSQL_PORT=$(free_port) CT_NATS_PORT=$(free_port) CT_MAIL_PORT=$(free_port) CT_SANDBOX_PORT=$(free_port)
export CT_SANDBOX_ORDERS=$("$work/composestory" sandbox-orders)
dc() { "$compose" -p "$project" -f docker-compose.yml -f "$here/compose.override.yml" "$@"; }

# podman runs health checks from systemd timers, and there is no systemd
# here: this loop runs them, every 2 s, as the timers would.
health_loop() {
  while sleep 2; do
    for id in $(podman ps -q --filter "label=com.docker.compose.project=$project"); do
      podman healthcheck run "$id" >/dev/null 2>&1 &
    done
    wait
  done
}
health_loop &
health_pid=$!

status=1
cleanup() {
  set +e
  kill "$health_pid" 2>/dev/null; wait "$health_pid" 2>/dev/null
  if [ "$status" != 0 ]; then
    echo; echo "== state at failure"
    dc ps -a --format 'table {{.Name}}\t{{.State}}\t{{.Status}}'
    for id in $(podman ps -aq --filter "label=com.docker.compose.project=$project" --filter health=unhealthy); do
      echo "-- last health check of $(podman inspect --format '{{.Name}}' "$id")"
      podman inspect --format '{{range .State.Health.Log}}exit {{.ExitCode}}: {{.Output}}{{"\n"}}{{end}}' "$id" | grep -A2 '^exit' | tail -3
    done
    for s in $(dc config --services); do echo "-- logs of $s (last 30 lines)"; dc logs --no-color --tail 30 "$s" 2>&1; done
  fi
  if [ "$status" != 0 ] && [ "${CT_KEEP:-}" = 1 ]; then
    echo "CT_KEEP=1: the stack stays up; DOCKER_HOST=$DOCKER_HOST $compose -p $project down -v to remove it (podman service pid $service_pid)"
    return
  fi
  echo; echo "== down"
  dc down -v --remove-orphans --timeout 10 >/dev/null 2>&1 || echo "compose down failed" >&2
  kill "$service_pid" 2>/dev/null; wait "$service_pid" 2>/dev/null
  echo "compose-test: $([ "$status" = 0 ] && echo PASS || echo FAIL) in $(( $(date +%s) - began ))s"
}
trap cleanup EXIT

say "up"
dc down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true
dc --progress quiet up -d --wait --wait-timeout 300 || fail "docker compose up --wait: a service did not become healthy"

# Every long-running container is healthy, in the numbers of the compose
# file; the seed ran once and exited 0.
check_health() {
  local bad=() want n
  for s in mysql nats sfsandbox mailpit detector sender ticketpoller; do
    want=1; case $s in detector|sender) want=2 ;; esac
    n=$(podman ps --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=$s" --filter health=healthy -q | wc -l)
    [ "$n" = "$want" ] || bad+=("$s: $n of $want healthy")
  done
  local seed
  seed=$(podman ps -a --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=seed" --format '{{.Status}}')
  case $seed in "Exited (0)"*) ;; *) bad+=("seed: $seed, want Exited (0)") ;; esac
  [ ${#bad[@]} = 0 ] || fail "$1: ${bad[*]}"
  echo "every container healthy ($1): mysql, nats, sfsandbox, mailpit, 2 detectors, 2 senders, ticketpoller; seed exited 0"
}
say "health"
check_health "after up"

# The broker requires credentials (compose's nats.conf and nats.env).
info=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; IFS= read -r l <&3; printf "%s" "$l"' _ "$CT_NATS_PORT" || true)
case $info in
  INFO*'"auth_required":true'*) echo "the broker requires credentials (auth_required in its INFO)" ;;
  *) fail "the broker does not require credentials: ${info:-no INFO from 127.0.0.1:$CT_NATS_PORT}" ;;
esac

say "the merchant's story"
"$work/composestory" -timeout 2m \
  -mysql "sfsync:sfsync@tcp(127.0.0.1:$CT_MYSQL_PORT)/prestashop" \
  -sandbox "http://127.0.0.1:$CT_SANDBOX_PORT" \
  -mail "http://127.0.0.1:$CT_MAIL_PORT/api/messages" || fail "the merchant's story (above)"

# Two detectors: one leads, the other waits (their /readyz says which).
roles=()
for i in 1 2; do
  addr=$(dc port --index "$i" detector 8080) || fail "compose port --index $i detector 8080"
  roles+=("$(curl -s --max-time 5 "http://$addr/readyz" | sed -n 's/.*"role":"\([a-z]*\)".*/\1/p')")
done
case "${roles[*]}" in
  "leader waiting"|"waiting leader") echo "detectors: one leader, one waiting" ;;
  *) fail "detectors' roles are '${roles[*]}', want one leader and one waiting" ;;
esac

say "health"
check_health "after the story"
restarts=$(podman inspect --format '{{.Name}} {{.RestartCount}}' $(podman ps -aq --filter "label=com.docker.compose.project=$project") | awk '$2 != 0')
[ -z "$restarts" ] || fail "containers restarted: $restarts"
echo "no container restarted"
status=0
