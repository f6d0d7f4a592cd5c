#!/bin/sh
# Installs what is needed and runs every test: formatting, lints, unit and integration
# tests, and the end-to-end suite (runc as oracle, containerd and podman as clients).
# Debian 12, as root. This is exactly what CI (.ci/run) runs.
set -eu
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && PATH="$HOME/.cargo/bin:$PATH"
./scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
./scripts/build.sh
export WARREN_RUNTIME="$PWD/target/x86_64-unknown-linux-gnu/release/warren-runtime"
export WARREN_CLI="$PWD/target/bin/warren"
export WARREN_SHARED="${WARREN_SHARED:-$(cd .. && pwd)/shared}"
# Build the `base` and `python` images from their recipes (debootstrap, apt, pip).
export WARREN_IMAGES_BUILD_TESTS="${WARREN_IMAGES_BUILD_TESTS:-1}"
cargo test --workspace --locked -- --test-threads="${TEST_THREADS:-2}"
