#!/usr/bin/env bash
# The GPU checks of issue 15, as one prepared script (meant to fit 8 minutes on one GPU; its steps carry timeouts).
#
#   OUT=some/folder bash tools/gpu_check.sh
#
# Installs the packages from this checkout (no downloads: numpy, torch with CUDA,
# scipy, networkx, pytest, hypothesis, Cython and setuptools must be there, as on
# the lent GPU machines), runs every test marked `cuda` and the compile tests on
# the GPU machine, then the GPU benchmark (tools/gpu_bench.py) and a short NRI
# training run on CUDA for its time per iteration. Results go to $OUT:
# summary.txt, tests.log, bench.md, nri.json. Without CUDA it writes
# "skipped: no CUDA device" and exits 0; GPU_CHECK_ON_CPU=1 runs it all on the
# CPU instead (a dry run of the script itself; NRI_ITERATIONS=5 keeps it short).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
summary() { echo "$*" | tee -a "$OUT/summary.txt"; }

DEVICE=cuda
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    if [ "${GPU_CHECK_ON_CPU:-}" != 1 ]; then
        summary "skipped: no CUDA device"
        exit 0
    fi
    DEVICE=cpu
fi
"$PY" -c "import torch; print('device: $DEVICE', torch.cuda.get_device_name(0) if '$DEVICE' == 'cuda' \
    else '', '| torch', torch.__version__)" | tee -a "$OUT/summary.txt"

SITE=${SITE:-/tmp/structgrad-site}
rm -rf "$SITE"
packages="packages/solvers packages/distributions packages/testing packages/relaxations"
packages="$packages packages/estimators packages/models apps/common apps/nri_graph_layout"
packages="$packages apps/dvae apps/l2x apps/toys apps/shootout"
# --no-deps --no-build-isolation: everything else is in the image; nothing is fetched.
if ! timeout 240 "$PY" -m pip install -q --no-deps --no-build-isolation --no-index \
    --target "$SITE" $packages > "$OUT/install.log" 2>&1; then
    summary "FAILED: install (see install.log)"
    exit 1
fi
export PYTHONPATH="$SITE" STRUCTGRAD_DEV=1 PYTHONUNBUFFERED=1

status=0
for pkg in solvers distributions relaxations estimators models; do
    # The cuda-marked tests and the compile tests, run against the installed copies.
    (cd "packages/$pkg" && timeout 300 "$PY" -m pytest -q -p no:cacheprovider -o addopts="" \
        -W "ignore::DeprecationWarning" -m "cuda or not cuda" \
        -k "cuda or compile or native" tests) >> "$OUT/tests.log" 2>&1
    rc=$?
    [ $rc -eq 5 ] && rc=0  # no test selected
    summary "tests $pkg: exit $rc"
    [ $rc -ne 0 ] && status=1
done

if timeout 240 "$PY" tools/gpu_bench.py --device "$DEVICE" > "$OUT/bench.md" 2>> "$OUT/tests.log"; then
    summary "bench: ok (bench.md)"
else
    summary "bench: FAILED"; status=1
fi

# The NRI app's recipe on CUDA: time per iteration (the CPU figure is in its README).
nri="$OUT/nri"
if timeout 180 "$PY" -m nri_graph_layout generate --out "$nri/data.npz" --no-progress \
        --num-train 2000 --num-valid 200 --num-test 200 > /dev/null 2>&1 \
    && timeout 180 "$PY" -m nri_graph_layout train --data "$nri/data.npz" --method tree-sst \
        --device "$DEVICE" --iterations "${NRI_ITERATIONS:-200}" --out "$nri/run" --no-progress > "$OUT/nri.json" 2>> "$OUT/tests.log"; then
    summary "nri: ok (nri.json)"
else
    summary "nri: FAILED"; status=1
fi
# Every app's smoke run on the device.
apps=(
    "dvae train --smoke --out $OUT/apps/dvae"
    "l2x train --smoke --out $OUT/apps/l2x"
    "toys run --smoke --structure spanning_tree --estimator t-reinforce+ --out $OUT/apps/toys"
    "shootout --smoke --out $OUT/apps/shootout --no-progress"
)
for cmd in "${apps[@]}"; do
    if timeout 120 "$PY" -m $cmd --device "$DEVICE" > /dev/null 2>> "$OUT/tests.log"; then
        summary "app ${cmd%% *}: ok"
    else
        summary "app ${cmd%% *}: FAILED"; status=1
    fi
done
summary "exit $status"
exit $status
