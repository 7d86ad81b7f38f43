#!/usr/bin/env bash
# Installs and configures what `make compose-test` runs on, on a Debian
# bookworm machine with no Docker engine and no container registry: podman
# (runc, cgroupfs, netavark with aardvark-dns so that service names resolve)
# and mmdebstrap, which builds the base image from Debian's mirror.
# Idempotent: a second run changes nothing. Runs as root, or through sudo.
set -euo pipefail

sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "setup.sh: run as root or install sudo" >&2; exit 1; }
  sudo=sudo
fi

# iptables: netavark sets the networks up with it ("netavark: No such file or
# directory" without it).
pkgs=(podman runc netavark aardvark-dns iptables uidmap slirp4netns fuse-overlayfs mmdebstrap)
need=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup.sh: installing ${need[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  log=$(mktemp)
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >"$log" 2>&1 ||
    { cat "$log" >&2; rm -f "$log"; echo "setup.sh: apt-get install failed" >&2; exit 1; }
  rm -f "$log"
fi

# default_ulimits = []: setting RLIMIT_NOFILE/NPROC is not permitted here.
# runc and cgroupfs: crun refuses this host's hybrid cgroups, and there is
# no systemd. netavark: with aardvark-dns, containers on a compose network
# resolve each other by service name (the CNI backend did not).
conf=/etc/containers/containers.conf
want='# Written by deployments/compose-test/setup.sh (sfsync make compose-test).
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"'
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
  echo "setup.sh: writing $conf"
  $sudo mkdir -p /etc/containers
  printf '%s\n' "$want" | $sudo tee "$conf" >/dev/null
  # A backend change needs a reset of podman's state (images, networks).
  $sudo podman system reset --force >/dev/null 2>&1 || true
fi
podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}} {{.Host.NetworkBackend}}' >/dev/null
