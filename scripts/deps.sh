#!/bin/sh
# Installs what warren needs to build, run and test on Debian 12 (as root): the Rust
# toolchain when missing, libseccomp for the static runtime, busybox-static for test
# bundles, and the engines and runtimes the tests compare with or drive.
set -eu
export DEBIAN_FRONTEND=noninteractive
PKGS="ca-certificates curl gcc libc6-dev pkg-config libseccomp-dev libssl-dev busybox-static iproute2
      runc crun containerd podman conmon skopeo umoci golang-github-containers-common
      hyperfine python3 jq file protobuf-compiler nftables iptables containernetworking-plugins
      debootstrap docker-registry uidmap tmux attr"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing
fi
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then :; else
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
  fi
fi
