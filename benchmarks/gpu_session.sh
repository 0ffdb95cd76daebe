#!/usr/bin/env bash
# Every GPU check and benchmark in one command, for a short lease on a CUDA machine.
#
#   bash benchmarks/gpu_session.sh            # logs and suite.json under $OUT (or ./gpu-out)
#
# Runs, each under its own time limit so that one slow part cannot starve the rest:
# the GPU tests with pytest (tests/gpu: layers vs cuDNN, fused BPTT vs reference loop,
# float64 gradcheck, autocast, CUDA graphs vs eager, speech features and models GPU vs CPU),
# speech_feature_throughput.py (features, GPU vs CPU), cuda_graphs.py (eager vs
# CUDA-graph-captured training steps), lm_throughput.py (Trainer vs a plain loop on the GPU),
# two short `rnnlab train` runs on the GPU with every extra (adding in fp16 with the gradient
# scaler, a character model of a generated text in bf16) and the suite's grid against cuDNN. Needs rnnlab importable (installed, or run from
# the repository root: src/ is put on PYTHONPATH).
set -u
out=${OUT:-gpu-out}
mkdir -p "$out"
export PYTHONPATH="src:benchmarks${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export RNNLAB_NATIVE=0  # the CPU's native loops are not what this measures: no build here

python3 -c "import torch, rnnlab; assert torch.cuda.is_available(), 'no CUDA device'" || exit 2
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader

part() {  # part LIMIT NAME COMMAND...: run, keep the log, show its end
    local limit=$1 name=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    echo "== $name: exit $? in $((SECONDS - start)) s"
    tail -n "${TAIL:-25}" "$out/$name.log"
}

TAIL=12 part "${LIMIT_CHECK:-150}" gpu_tests python3 -m pytest tests/gpu -q -rfE \
    -p no:cacheprovider
TAIL=8 part "${LIMIT_SPEECH:-50}" speech python3 benchmarks/speech_feature_throughput.py
TAIL=22 part "${LIMIT_GRAPHS:-60}" graphs python3 benchmarks/cuda_graphs.py
TAIL=6 part "${LIMIT_LM:-60}" lm python3 benchmarks/lm_throughput.py --synthetic \
    --device cuda --steps 100 --repeats 2
text=/tmp/rnnlab-gpu-text.txt
python3 -c "import random; r = random.Random(0); words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'ran']; print(' '.join(r.choice(words) for _ in range(60000)))" >"$text"
extras=(--set model.layer_norm=true --set model.zoneout=0.1 --set model.recurrent_dropout=0.1
    --set model.weight_drop=0.2 --set train.device=cuda)
TAIL=4 part "${LIMIT_TRAIN:-60}" train_fp16 python3 -m rnnlab train adding --quiet \
    --set train.precision=fp16 --set train.epochs=2 --set train.deterministic=false \
    "${extras[@]}" --run-dir /tmp/rnnlab-gpu-adding
TAIL=4 part "${LIMIT_TRAIN:-60}" train_bf16 python3 -m rnnlab train tinyshakespeare-char \
    --quiet --set data.corpus=none --set "data.path=$text" --set train.precision=bf16 \
    --set train.epochs=1 --set model.hidden_size=128 "${extras[@]}" \
    --run-dir /tmp/rnnlab-gpu-char
TAIL=8 part "${LIMIT_SUITE:-200}" suite python3 benchmarks/suite.py --device cuda --skip-e2e \
    --json "$out/suite.json"
grep -E "FAIL|Error|error|failed" "$out"/*.log | head -20
