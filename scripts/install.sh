#!/bin/sh
# Installs what warren needs, builds it, and installs `warren` and `warren-runtime` into
# /usr/local/bin (PREFIX to change). Debian 12, as root.
set -eu
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
./scripts/deps.sh
./scripts/build.sh
install -D -m 0755 target/x86_64-unknown-linux-gnu/release/warren-runtime "$PREFIX/bin/warren-runtime"
install -D -m 0755 target/bin/warren "$PREFIX/bin/warren"
install -D -m 0755 target/x86_64-unknown-linux-gnu/release/warren-monitor "$PREFIX/bin/warren-monitor"
# agent teams and pools: the swarm supervisor, the pool daemon and the static pool init
install -D -m 0755 target/release/warren-swarmd "$PREFIX/bin/warren-swarmd"
install -D -m 0755 target/release/warren-poold "$PREFIX/bin/warren-poold"
install -D -m 0755 target/bin/warren-pool-init "$PREFIX/bin/warren-pool-init"
mkdir -p "$PREFIX/share/warren/recipes"
cp images/recipes/*.toml "$PREFIX/share/warren/recipes/"
echo "installed: $PREFIX/bin/warren $PREFIX/bin/warren-runtime"
