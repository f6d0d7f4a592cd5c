#!/bin/bash
# h200-check.sh: device passthrough on a machine with a real NVIDIA GPU (an H200 when the
# device tool lends one). Run as root from the repository root:
#     tests/gpu/h200-check.sh [path/to/warren-runtime]
# It builds the runtime if needed, then checks, printing `ok -`/`not ok -` lines:
#   1. `warren-runtime cdi generate --kind nvidia` produces a spec naming every GPU;
#   2. a container with the CDI annotation nvidia.com/gpu=0 sees exactly GPU 0: its
#      in-container `nvidia-smi -L` UUID equals the host's for index 0;
#   3. nvidia.com/gpu=all sees every GPU;
#   4. a CUDA driver probe (dlopen libcuda.so.1, cuInit, cuDeviceGetCount, cuCtxCreate,
#      cuMemAlloc of 64 MiB, cuMemFree) succeeds inside the container;
#   5. NVIDIA_VISIBLE_DEVICES=all (no CDI spec on disk: generated on the fly) works too;
#   6. a container without a GPU request sees no /dev/nvidia* and no GPU.
# The container's rootfs holds only busybox, the host's glibc and the probe, so the
# driver libraries and nvidia-smi it sees can only come from the injection.
set -u
cd "$(dirname "$0")/../.."
R=${1:-}
if [ -z "$R" ]; then
  if [ ! -x target/bin/warren-runtime ]; then ./scripts/build.sh >/dev/null || exit 1; fi
  R=$PWD/target/bin/warren-runtime
fi
PASS=0; FAIL=0
ok() { echo "ok - $1"; PASS=$((PASS+1)); }
nok() { echo "not ok - $1"; FAIL=$((FAIL+1)); [ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/#   /' | tail -20; }
command -v nvidia-smi >/dev/null || { echo "not ok - host has no nvidia-smi"; exit 1; }
echo "# host: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1); runtime: $R"
HOST_UUIDS=$(nvidia-smi --query-gpu=uuid --format=csv,noheader)
NGPU=$(printf '%s\n' "$HOST_UUIDS" | grep -c .)
T=$(mktemp -d /tmp/h200.XXXXXX); ROOT=$T/root
trap 'for c in $("$R" --root "$ROOT" list -q 2>/dev/null); do "$R" --root "$ROOT" delete -f "$c"; done; rm -f /var/run/cdi/warren-h200-check.yaml; rm -rf "$T"' EXIT

# 1. spec generation
mkdir -p /var/run/cdi
if "$R" cdi generate --kind nvidia --builtin-hooks --output /var/run/cdi/warren-h200-check.yaml 2>"$T/gen.err" &&
   [ "$(grep -c 'name: "\?GPU-' /var/run/cdi/warren-h200-check.yaml)" -ge "$NGPU" ]; then
  ok "cdi generate names all $NGPU GPUs ($(grep -c '^  - name' /var/run/cdi/warren-h200-check.yaml) devices)"
else
  nok "cdi generate" "$(cat "$T/gen.err"; head -40 /var/run/cdi/warren-h200-check.yaml 2>/dev/null)"
fi

# bundle: busybox + host glibc + the CUDA probe
RF=$T/bundle/rootfs
mkdir -p "$RF"/{bin,proc,dev,sys,tmp,etc,lib64,usr/lib/x86_64-linux-gnu}
cp /bin/busybox "$RF/bin/"; for a in sh ls cat grep wc echo head; do ln -s busybox "$RF/bin/$a"; done
for l in /lib64/ld-linux-x86-64.so.2; do cp -L "$l" "$RF/lib64/"; done
for l in libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1; do
  cp -L "/lib/x86_64-linux-gnu/$l" "$RF/usr/lib/x86_64-linux-gnu/" 2>/dev/null
done
ln -s usr/lib "$RF/lib"
cat > "$T/probe.c" <<'C'
#include <dlfcn.h>
#include <stdio.h>
typedef int (*f_i)(unsigned); typedef int (*f_ip)(int*); typedef int (*f_dev)(int*, int);
typedef int (*f_ctx)(void**, unsigned, int); typedef int (*f_alloc)(unsigned long long*, size_t);
typedef int (*f_free)(unsigned long long);
int main(void) {
  void *h = dlopen("libcuda.so.1", RTLD_NOW);
  if (!h) { printf("dlopen libcuda.so.1: %s\n", dlerror()); return 1; }
  f_i cuInit = (f_i)dlsym(h, "cuInit"); f_ip cuCount = (f_ip)dlsym(h, "cuDeviceGetCount");
  f_dev cuGet = (f_dev)dlsym(h, "cuDeviceGet"); f_ctx cuCtx = (f_ctx)dlsym(h, "cuCtxCreate_v2");
  f_alloc cuAlloc = (f_alloc)dlsym(h, "cuMemAlloc_v2"); f_free cuFree = (f_free)dlsym(h, "cuMemFree_v2");
  int r, n = 0, dev = 0; void *ctx = 0; unsigned long long p = 0;
  if ((r = cuInit(0))) { printf("cuInit: %d\n", r); return 1; }
  if ((r = cuCount(&n))) { printf("cuDeviceGetCount: %d\n", r); return 1; }
  if ((r = cuGet(&dev, 0)) || (r = cuCtx(&ctx, 0, dev))) { printf("context: %d\n", r); return 1; }
  if ((r = cuAlloc(&p, 64 << 20)) || (r = cuFree(p))) { printf("cuMemAlloc/Free: %d\n", r); return 1; }
  printf("cuda ok devices=%d\n", n); return 0;
}
C
gcc -O2 -o "$RF/bin/cudaprobe" "$T/probe.c" -ldl || nok "build the CUDA probe"
(cd "$T/bundle" && "$R" spec)
mkcfg() { # mkcfg ARGS_JSON ANNOTATIONS_JSON ENV_JSON
  python3 - "$T/bundle/config.json" "$1" "$2" "$3" <<'PY'
import json, sys
p, args, ann, env = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = args
c["process"]["env"] = ["PATH=/usr/bin:/bin", "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu"] + env
c["annotations"] = ann
c["root"]["readonly"] = False
json.dump(c, open(p, "w"))
PY
}
run() { "$R" --root "$ROOT" run --bundle "$T/bundle" "h200-$RANDOM" 2>&1; }

# 2. one GPU by CDI
mkcfg '["sh","-c","nvidia-smi -L; ls /dev | grep -c ^nvidia[0-9]"]' '{"cdi.k8s.io/gpu":"nvidia.com/gpu=0"}' '[]'
o=$(run); want=$(printf '%s\n' "$HOST_UUIDS" | head -1)
if printf '%s\n' "$o" | grep -q "$want" && [ "$(printf '%s\n' "$o" | grep -c 'UUID: GPU-')" = 1 ]; then
  ok "nvidia.com/gpu=0: in-container nvidia-smi shows exactly the host's GPU 0 ($want)"
else nok "nvidia.com/gpu=0" "$o"; fi

# 3. all GPUs by CDI
mkcfg '["sh","-c","nvidia-smi -L"]' '{"cdi.k8s.io/gpu":"nvidia.com/gpu=all"}' '[]'
o=$(run)
if [ "$(printf '%s\n' "$o" | grep -c 'UUID: GPU-')" = "$NGPU" ]; then ok "nvidia.com/gpu=all: all $NGPU GPUs, UUIDs match the host"
else nok "nvidia.com/gpu=all" "$o"; fi

# 4. CUDA probe
mkcfg '["/bin/cudaprobe"]' '{"cdi.k8s.io/gpu":"nvidia.com/gpu=0"}' '[]'
o=$(run)
case "$o" in *"cuda ok"*) ok "CUDA driver probe (cuInit, context, 64 MiB cuMemAlloc): $o" ;; *) nok "CUDA driver probe" "$o" ;; esac

# 5. legacy env, generated on the fly
rm -f /var/run/cdi/warren-h200-check.yaml
mkcfg '["sh","-c","nvidia-smi -L; /bin/cudaprobe"]' '{}' '["NVIDIA_VISIBLE_DEVICES=all","NVIDIA_DRIVER_CAPABILITIES=compute,utility"]'
o=$(run)
case "$o" in *"cuda ok"*) [ "$(printf '%s\n' "$o" | grep -c 'UUID: GPU-')" = "$NGPU" ] && ok "NVIDIA_VISIBLE_DEVICES=all (jit spec): $NGPU GPUs and CUDA works" || nok "NVIDIA_VISIBLE_DEVICES=all" "$o" ;;
  *) nok "NVIDIA_VISIBLE_DEVICES=all" "$o" ;; esac

# 6. no request, no GPU
mkcfg '["sh","-c","ls /dev/nvidia* 2>&1; nvidia-smi -L 2>&1; /bin/cudaprobe"]' '{}' '[]'
o=$(run)
case "$o" in *"No such file"*"dlopen libcuda.so.1"*) ok "no request: no /dev/nvidia*, no nvidia-smi, no libcuda" ;; *) nok "no request sees no GPU" "$o" ;; esac

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
