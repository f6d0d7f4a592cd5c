#!/bin/sh
# Builds warren's binaries in release mode:
#   target/x86_64-unknown-linux-gnu/release/warren-runtime   static, non-PIE (see README:
#                                                            every exec of the runtime is
#                                                            on the container start path)
#   target/release/warren                                    the user CLI
# and links them into target/bin/.
set -eu
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && PATH="$HOME/.cargo/bin:$PATH"
TRIPLE=x86_64-unknown-linux-gnu
# libseccomp is linked statically so the runtime has no shared-library dependencies.
LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=/usr/lib/x86_64-linux-gnu \
RUSTFLAGS="${WARREN_RUNTIME_RUSTFLAGS:--C target-feature=+crt-static -C relocation-model=static}" \
  cargo build --release --locked -p warren-runtime --target "$TRIPLE"
cargo build --release --locked -p warren-cli -p warren-benches
mkdir -p target/bin
ln -sf "../$TRIPLE/release/warren-runtime" target/bin/warren-runtime
ln -sf ../release/warren target/bin/warren
ln -sf ../release/warren-monitor target/bin/warren-monitor
ln -sf ../release/warren-lifecycle-bench target/bin/warren-lifecycle-bench
echo "built: target/bin/warren-runtime target/bin/warren"
