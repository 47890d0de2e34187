#!/bin/bash
# The GPU measurements the issues name, as one prepared run (each part time-boxed; logs go to
# $OUT as they are written, so a part cut off by its time box keeps what it measured):
#   bbmm: MLL + gradient vs GPyTorch at n = 10k/20k/40k with a float64 reference, and exact-GP
#         training at n = 100k and 1M (matrix-free); convlstm_attention: the full network's clips/s
#         on 16×112×112×3 clips; meta_gradient: env-steps/s of both learners on MinAtar Breakout.
#   OUT=/tmp/gpu bash experiments/gpu_checks.sh
# PARTS picks the parts (default bbmm,convlstm,meta: ~10 minutes of time boxes; bbmm_suite is
# opt-in). The convlstm part times the paper's network (the full config's). The spectral
# signatures pipeline (ResNet-32 on all of CIFAR-10, train → score → remove → retrain) needs its
# own device call: PARTS=spectral SPECTRAL_STEPS=20000 T_SPECTRAL=540 bash experiments/gpu_checks.sh
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # JAX and torch (GPyTorch, the reference) share the GPU
OUT=${OUT:-/tmp/gpu_checks}
mkdir -p "$OUT"
py=${PYTHON:-python3}
want() { [[ ",${PARTS:-bbmm,convlstm,meta}," == *",$1,"* ]]; }
run() {  # run NAME SECONDS CMD...: time-boxed, logged to $OUT/NAME.txt
  local name=$1 secs=$2; shift 2
  echo "== $name (time box ${secs}s): $*" | tee "$OUT/$name.txt"
  timeout "$secs" "$@" 2>&1 | grep -v -E "Warning|warn\(|^  warnings|xla_bridge" | tee -a "$OUT/$name.txt"
  echo "== $name exit ${PIPESTATUS[0]}" | tee -a "$OUT/$name.txt"
}
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; $py -c "import jax, torch; print('jax', jax.__version__, jax.devices(), 'torch', torch.__version__)"; } 2>&1 | tee "$OUT/device.txt"
want bbmm && run bbmm_benchmark "${T_BBMM:-170}" $py experiments/bbmm/benchmark.py --sizes="${BBMM_SIZES:-10000,20000,40000}" \
    --reps=3 --gpytorch --exact=torch --max_chol_n=0 --max_free_n="${BBMM_FREE_N:-20000}"
# jax 0.11.2's XLA aborted compiling the full network's training step in its Triton GEMM fusion
# pass ("triton_tiling_propagation.cc: Check failed: subdim_size_accumulator == dim_size (3136 vs.
# 112)", H200, 2026-11-26); cuBLAS GEMMs avoid it.
want convlstm && XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_enable_triton_gemm=false" \
run convlstm_benchmark "${T_CONVLSTM:-170}" $py experiments/convlstm_attention/benchmark.py \
    --scale="${CONVLSTM_SCALE:-full}" --repeats=3
want bbmm && run bbmm_scale "${T_SCALE:-40}" $py experiments/bbmm/scale.py --sizes="${SCALE_SIZES:-100000}" \
    --steps="${SCALE_STEPS:-3}"
# n = 1M in float32 with the default Woodbury preconditioner solve the first CG step broke down
# (it loses definiteness once λ_max(K)/σ² ≳ 1e6); the orthogonal form converged in 8 CG
# iterations (float64 with Woodbury: 3).
want bbmm && run bbmm_scale_1m "${T_SCALE_1M:-100}" $py experiments/bbmm/scale.py --sizes="${SCALE_1M:-1000000}" \
    --steps=1 --precond_form=orthogonal
# bbmm: the accuracy suite at GPU scale (float32 BBMM vs float64 Cholesky per case, 8 probe draws;
# n = 2k/5k synthetic σ² grid and UCI sets, plus synthetic n = 10k/20k); opt-in, ~5–8 minutes:
# PARTS=bbmm_suite T_SUITE=480 bash experiments/gpu_checks.sh
want bbmm_suite && run bbmm_accuracy_suite "${T_SUITE:-480}" $py -c "import sys; from jaxpapers._src import reproduce; sys.exit(reproduce.run())" \
    --papers=bbmm --scale=full --only=accuracy_suite --results_dir="$OUT/results" --noprogress
want meta && run meta_gradient_benchmark "${T_META:-90}" $py experiments/meta_gradient/benchmark.py \
    --num_envs="${META_ENVS:-4096}" --updates=20 --repeats=2
# spectral_signatures: one row of the paper's CIFAR-10 protocol end to end (ResNet-32 on all of
# CIFAR-10, crop + flip, SGD 0.1 → 0.01 → 0.001 over 80k steps of batch 128, scored at s3u3):
# airplane→bird, ε = 10%, X trigger: poison → train → score → remove 1.5·ε·n_y → retrain →
# evaluate, with the reference-code score, activation clustering, SPECTRE-style and the raw-pixel
# control. Needs the CIFAR-10 copy: ../shared/data/cifar10-jpeg beside the repo, $JAXPAPERS_DATA,
# or CIFAR10_DIR (else it stops at once with DatasetNotFoundError naming the folders searched).
# Two 80k-step trainings do not fit a 10-minute device command: run this part on its own with a
# longer box, or shorten both trainings with SPECTRAL_STEPS (e.g. SPECTRAL_STEPS=20000
# T_SPECTRAL=540; the lr schedule keeps its 50%/75% boundaries).
want spectral && run spectral_full_resnet32 "${T_SPECTRAL:-1500}" $py experiments/spectral_signatures/main.py \
    --config=experiments/spectral_signatures/configs/default.py:full_one \
    --config.train.num_steps="${SPECTRAL_STEPS:-80000}" --config.data_dir="${CIFAR10_DIR:-}" \
    --workdir="$OUT/spectral_full_resnet32"
exit 0
