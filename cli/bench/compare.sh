#!/bin/sh
# Compares `warren run -- true` with `podman run --rm` of the same busybox rootfs, `crun
# run` of an equivalent bundle and `warren-runtime run` of the bundle warren itself writes
# (the CLI's own overhead), in one hyperfine run; then measures an idle monitor's memory.
#
#   cli/bench/compare.sh [WARREN] [WARREN_RUNTIME]      (as root; needs hyperfine, podman,
#                                                        crun, busybox-static, jq)
set -eu
# crun refuses cgroup "hybrid mode" while /sys/fs/cgroup/unified/cgroup.controllers is not
# empty: like shared/bench/lifecycle.sh, run everything in a private mount namespace in
# which that file reads empty (the host's view is untouched).
if [ -z "${WARREN_BENCH_NS:-}" ]; then
  exec unshare -m --propagation private env WARREN_BENCH_NS=1 sh "$0" "$@"
fi
C=/sys/fs/cgroup/unified/cgroup.controllers
if [ -n "$(cat "$C" 2>/dev/null)" ]; then : > /tmp/warren-bench-empty; mount --bind /tmp/warren-bench-empty "$C"; fi
W=${1:-target/bin/warren}
RT=${2:-target/x86_64-unknown-linux-gnu/release/warren-runtime}
W=$(realpath "$W"); RT=$(realpath "$RT")
B=$(mktemp -d /tmp/warren-bench.XXXXXX)
R="--root $B/run --data-root $B/data"
trap 'for id in $($W $R ps -aq 2>/dev/null); do $W $R rm -f "$id" >/dev/null 2>&1; done; podman rmi -f warren-bench-bb >/dev/null 2>&1 || true; umount -R "$B"/bundle-w/rootfs 2>/dev/null || true; rm -rf "$B"' EXIT

# The rootfs: static busybox.
mkdir -p "$B/rootfs/bin" "$B/rootfs/etc" "$B/rootfs/proc" "$B/rootfs/sys" "$B/rootfs/dev" "$B/rootfs/tmp"
cp /usr/bin/busybox "$B/rootfs/bin/busybox"
for l in sh true sleep; do ln -s busybox "$B/rootfs/bin/$l"; done
tar -C "$B/rootfs" -cf "$B/bb.tar" .
podman import -q "$B/bb.tar" warren-bench-bb >/dev/null

# crun: the same rootfs, crun's default spec running `true`.
mkdir -p "$B/bundle-c"; cp -a "$B/rootfs" "$B/bundle-c/rootfs"
(cd "$B/bundle-c" && crun spec && jq '.process.terminal=false | .process.args=["/bin/true"]' config.json > c.json && mv c.json config.json)

# warren-runtime: the very bundle `warren run` writes (host view), taken from a sandbox.
mkdir -p "$B/w"; cd "$B/w"
$W $R run -d --name bench-src -- sleep 60 >/dev/null
ID=$($W $R ps -q)
cp -a "$B/run/sandboxes/$ID/bundle" "$B/bundle-w"
$W $R rm -f bench-src >/dev/null
jq --arg r "$B/bundle-w/rootfs" '.process.args=["true"] | .root.path=$r' "$B/bundle-w/config.json" > "$B/c.json"
mv "$B/c.json" "$B/bundle-w/config.json"

# warren's own store gets the same busybox image.
$W $R import "$B/bb.tar" bb >/dev/null

hyperfine -N --warmup 5 --runs "${RUNS:-50}" --export-json "$B/h.json" \
  -n "warren run --rm --image bb -- true" "$W $R run --rm --image bb -- /bin/true" \
  -n "warren run --rm -- true (host view)" "$W $R run --rm -- true" \
  -n "warren-runtime run (same bundle)" "$RT --root $B/rt run --bundle $B/bundle-w bw" \
  -n "crun run" "crun --root $B/crun run --bundle $B/bundle-c bc" \
  -n "podman run --rm (busybox)" "podman run --rm --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --network none warren-bench-bb /bin/true" >&2
jq -r '.results[] | "\(.command)\t\(.mean*1000)\t\(.stddev*1000)"' "$B/h.json" | awk -F'\t' '
  NR==1 {w=$2} {printf "%-36s %8.2f ms ± %5.2f   ratio to warren run: %5.2f\n", $1, $2, $3, $2/w}'

# Idle monitor memory.
$W $R run -d --name idle -- sleep 600 >/dev/null
sleep 1
P=$(cat "$B"/run/sandboxes/*/monitor.pid)
echo "idle monitor: $(grep VmRSS /proc/$P/status | tr -s ' ') ($(grep -E '^Pss:' /proc/$P/smaps_rollup | tr -s ' '), $(grep RssAnon /proc/$P/status | tr -s ' '), $(grep RssFile /proc/$P/status | tr -s ' '))"
