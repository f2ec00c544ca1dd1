#!/usr/bin/env bash
# The GPU column of issue 13 in one command, for a session that is lent a GPU machine (one H200 here).
#
#   1. here, on the CPU machine with network (once; ~20 MB into build/gpu_wheels, which git ignores):
#        bash bench/gpu_check.sh fetch
#   2. on the device, one call:  run(command="bash bench/gpu_check.sh", carry=["build/gpu_wheels"], timeout_s=540)
#   3. the plumbing, here, without a GPU (cuda -> cpu, tiny sizes; ~2 min):
#        GPU_CHECK_DRY=1 OUT=/tmp/gpu_check_dry bash bench/gpu_check.sh
#
# The device machine has no network and no copy of .venv (2 GB, Python 3.11, CPU torch: it cannot travel).
# Its image has python3 (3.12) with a CUDA torch, numpy, pandas, pyyaml, pytest (+ timeout, xdist),
# typer, rich, click and scikit-learn, but not pydantic, SQLAlchemy, alembic or Celery/kombu: those travel
# as wheels (fetch, below) and are installed into /tmp/gpu_check_site (PYTHONPATH) in a few seconds.
# A carried .venv that has a CUDA torch is used instead when there is one; GPU_CHECK_PY=... names any other.
#
# Parts, each under `timeout` and a global deadline (GPU_CHECK_BUDGET, default 470 s; everything
# measured below is expected to take 2-4 min on an H200), each writing its own file in $OUT
# (default build/gpu_out):
#   setup.txt   which python, the wheel install, the import check
#   env.txt     (a) nvidia-smi, torch/CUDA/cuDNN versions, cores, memory
#   tests.txt   (b) pytest -k cuda over tests/models/test_probe.py (the 13 CUDA-parametrized tests: per-timestep
#               gradient profiles on CUDA vs float64 references on the CPU), test_device_paths.py (resume on
#               CUDA: Adam's step counter on the CPU; a CUDA checkpoint resumed on the CPU) and
#               test_contract.py (training on cuda end to end): they must pass, not skip
#   engine.txt  (c) bench/engine_overhead.py --device cuda, lstm gru rnn, T=200 H=128 B=64, 5 x 50 steps
#   sweep.txt   (d) bench/sweep_throughput.py --device cuda, --slots 1, 4 and 8 (one invocation each)
#   summary.md  the status of every part and the tables, also printed at the end
set -u
cd "$(dirname "$0")/.."

WHEELS=${GPU_CHECK_WHEELS:-build/gpu_wheels}
# What the device image lacks, pinned to the versions the CPU suite runs with (.venv). The binary ones
# (pydantic_core, SQLAlchemy, greenlet, bcrypt, cryptography, cffi, tornado) are fetched for the device's
# Python; the rest are pure Python. tzdata: kombu/celery need a zone database; async-timeout: redis (imported
# by kombu) needs it below Python 3.11.3.
PINS="pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
pydantic-settings==2.16.3 python-dotenv==1.2.4 SQLAlchemy==2.1.9 greenlet==3.5.6 alembic==1.20.1 Mako==1.4.3
celery==5.7.0 kombu==5.7.0 billiard==4.3.2 vine==5.1.0 amqp==5.4.2 click-didyoumean==0.3.1
click-plugins==1.1.1.2 click-repl==0.4.1 prompt_toolkit==3.0.53 wcwidth==0.9.4 redis==8.1.0 tzlocal==5.4.5
pytz==2026.6 tzdata async-timeout bcrypt==5.0.0 cryptography==50.0.2 cffi==2.1.1 pycparser flower==2.2.0 tornado==6.6.1"

if [ "${1:-}" = fetch ]; then
    pyver=${2:-3.12}   # the device's python3 is 3.12
    mkdir -p "$WHEELS"
    plats=""
    for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
             manylinux_2_34_x86_64 manylinux_2_24_x86_64 manylinux1_x86_64; do plats="$plats --platform $p"; done
    pip=${PIP:-.venv/bin/python -m pip}
    # shellcheck disable=SC2086
    set -o pipefail
    $pip download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp $plats \
        -d "$WHEELS" $PINS 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; } || exit
    ls -1 "$WHEELS"; du -sh "$WHEELS"
    exit 0
fi

DRY=${GPU_CHECK_DRY:-0}
OUT=${OUT:-build/gpu_out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONUNBUFFERED=1
BUDGET=${GPU_CHECK_BUDGET:-470}
STATUS=$OUT/.status
: > "$STATUS"

if [ "$DRY" = 1 ]; then
    DEV=cpu
    SLOTS="1 2"   # a CPU worker gets at most one slot per core (2 here); a GPU worker may have more
    ENGINE_ARGS="--device cpu --clock wall --epochs 1 --steps 3 --seq-len 20 --hidden 16 --batch 8 --repeats 1 --unrolled-reps 1"
else
    DEV=cuda
    SLOTS="1 4 8"
    ENGINE_ARGS="--device cuda --epochs 5 --steps 50 --seq-len 200 --hidden 128 --batch 64 --repeats 1 --unrolled-reps 5"
fi

# -- the python: GPU_CHECK_PY, the dry run's .venv, a carried .venv with CUDA, else the image's python3 + wheels
{
    echo "started $(date -u +%FT%TZ) on $(hostname); dry run: $DRY; budget ${BUDGET} s"
    if [ -n "${GPU_CHECK_PY:-}" ]; then
        PY=$GPU_CHECK_PY
    elif [ "$DRY" = 1 ]; then
        PY=.venv/bin/python
    elif [ -x .venv/bin/python ] && timeout 60 .venv/bin/python -c \
            'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
        PY=.venv/bin/python
    else
        PY=python3
    fi
    echo "python: $PY ($($PY -V 2>&1))"
    if [ "$PY" != .venv/bin/python ]; then
        if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
            echo "installing $(ls "$WHEELS"/*.whl | wc -l) carried wheels from $WHEELS into /tmp/gpu_check_site"
            rm -rf /tmp/gpu_check_site
            timeout 90 $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
                --target /tmp/gpu_check_site "$WHEELS"/*.whl 2>&1 | grep -v "^WARNING: Target directory"
            export PYTHONPATH=/tmp/gpu_check_site${PYTHONPATH:+:$PYTHONPATH}
        else
            echo "no wheels in $WHEELS (run 'bash bench/gpu_check.sh fetch' here and carry $WHEELS)"
        fi
    fi
    timeout 60 $PY - <<'EOF'
import importlib
missing = []
for m in ("torch", "numpy", "pandas", "yaml", "pytest", "pydantic", "pydantic_settings", "sqlalchemy", "alembic",
          "celery", "kombu", "typer", "rich", "bcrypt", "sklearn"):
    try:
        mod = importlib.import_module(m)
        print(f"  {m} {getattr(mod, '__version__', '')} {getattr(mod, '__file__', '')}")
    except Exception as e:   # noqa: BLE001
        missing.append(m)
        print(f"  {m}: MISSING ({type(e).__name__}: {e})")
print("imports:", "all present" if not missing else f"missing {missing}: the parts that need them will fail")
EOF
} > "$OUT/setup.txt" 2>&1
echo "| setup | done | ${SECONDS} s | |" >> "$STATUS"

part() {   # part NAME BUDGET_S FILE COMMAND...: run under timeout, append to $OUT/FILE, record rc and time
    local name=$1 budget=$2 file=$3
    shift 3
    local left=$((BUDGET - SECONDS))
    [ "$budget" -gt "$left" ] && budget=$left
    if [ "$budget" -lt 10 ]; then
        echo "| $name | skipped: the budget is spent | | |" >> "$STATUS"
        return
    fi
    local t0=$SECONDS
    echo "\$ $*   (timeout ${budget} s)" >> "$OUT/$file"
    local rc
    if command -v setsid >/dev/null; then
        # its own process group, so that nothing of it outlives the part: a timed-out sweep's Celery worker
        # would otherwise finish its run (warm shutdown) on the GPU while the next part measures
        setsid -w timeout -k 10 "$budget" "$@" >> "$OUT/$file" 2>&1 &
        local pid=$!
        wait $pid
        rc=$?
        kill -KILL -- -$pid 2>/dev/null
    else
        timeout -k 10 "$budget" "$@" >> "$OUT/$file" 2>&1
        rc=$?
    fi
    local what=$rc
    [ $rc = 124 ] && what="124 (timed out)"
    echo "| $name | exit $what | $((SECONDS - t0)) s | budget ${budget} s |" >> "$STATUS"
    echo >> "$OUT/$file"
}

# (a) environment
part env 20 env.txt bash -c "nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
--format=csv; nproc; free -g | head -2; $PY -c 'import torch, platform; c = torch.cuda.is_available(); \
print(\"python\", platform.python_version(), \"torch\", torch.__version__, \"CUDA\", torch.version.cuda, \
\"cuDNN\", torch.backends.cudnn.version(), \"cuda available:\", c, \"device:\", \
torch.cuda.get_device_name() if c else None)'"
# (b) the CUDA tests: test_probe.py's profile tests are parametrized over cpu and cuda; the cuda ones only
part tests 90 tests.txt $PY -m pytest tests/models/test_probe.py tests/models/test_device_paths.py tests/models/test_contract.py -k cuda -v -rs -p no:cacheprovider
# (c) the engine's overhead on the GPU (cuDNN), paired and end to end
# shellcheck disable=SC2086
part engine 150 engine.txt $PY bench/engine_overhead.py --cells lstm gru rnn $ENGINE_ARGS
# (d) runs per hour, one invocation per slot count so that one stuck configuration costs only its own
for n in $SLOTS; do
    b=55; [ $n = 1 ] && b=75
    part "sweep, $n slot(s)" $b sweep.txt $PY -m bench.sweep_throughput --device $DEV --slots $n --timeout $((b - 15))
done

# -- the summary
{
    echo "# GPU check ($( [ "$DRY" = 1 ] && echo "DRY RUN on the CPU: cuda -> cpu, tiny sizes" || echo "device"))"
    echo
    echo "$(date -u +%FT%TZ), $SECONDS s in all; python $PY"
    echo
    echo "| part | result | took | |"
    echo "|---|---|---|---|"
    cat "$STATUS"
    echo
    echo "## (a) environment"
    echo
    grep -E "^GPU|NVIDIA|^python|^name|cuda available" "$OUT/env.txt" | grep -v '^\$' | sed 's/^/    /'
    grep -E "^imports:" "$OUT/setup.txt"
    echo
    echo "## (b) CUDA tests (test_probe.py, test_device_paths.py, test_contract.py; -k cuda)"
    echo
    echo "CUDA tests: $(grep -c 'cuda.* PASSED' "$OUT/tests.txt") passed, \
$(grep -c 'cuda.* FAILED' "$OUT/tests.txt") failed, $(grep -c 'cuda.* SKIPPED' "$OUT/tests.txt") skipped \
(16 expected to pass on a GPU: 13 profile tests, 2 resume tests, 1 training test)"
    grep -E "^(FAILED|ERROR)|[0-9]+ (passed|failed|skipped|deselected)" "$OUT/tests.txt" | tail -15
    echo
    echo "## (c) engine overhead"
    echo
    grep -E "^(GPU|CPU|clock|Unrolled)|^\|" "$OUT/engine.txt" | sed -e 's/^Unrolled.*/\n&\n/'
    grep -E "Error|error:|^engine_overhead" "$OUT/engine.txt" | grep -v '^|' | tail -5
    echo
    echo "## (d) sweep throughput"
    echo
    grep -E "^sweep:" "$OUT/sweep.txt" | head -1
    echo "| configuration | repeat | wall s | runs/h | in flight | failed | load avg |"
    echo "|---|---|---|---|---|---|---|"
    grep -E "^\| [0-9]" "$OUT/sweep.txt"
    grep -E "Error|Traceback" "$OUT/sweep.txt" | grep -v '^|' | tail -5
} > "$OUT/summary.md" 2>&1
rm -f "$STATUS"
cat "$OUT/summary.md"
