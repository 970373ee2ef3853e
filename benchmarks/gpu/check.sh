#!/usr/bin/env bash
# The one prepared GPU check (at most 10 minutes): run on a lent GPU machine from the project
# root, after `bash ../shared/gpu/fetch-wheels.sh` here put the missing wheels into .whl/:
#   bash benchmarks/gpu/check.sh
# 1. nvml_probe.py (about 90 s): each NVML call, the energy counter, idle, counter against
#    integrated power over a matmul burn, the harness's sampler, torch's cuda:0 against the
#    measured GPU; PASS/FAIL per expectation into $OUT/nvml-probe.json.
# 2. The harness end to end (transformers serve, three load points), with the GPU's compute
#    processes logged every 2 s (nvidia-smi --query-compute-apps) to show the server sat on the
#    measured GPU. It writes results/<gpu>-transformers-check/; all of it goes to
#    $OUT/results.tgz.
set -uo pipefail
out_dir=${OUT:-/tmp}
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi > "$out_dir/nvidia-smi.txt"
timeout 150 python3 benchmarks/gpu/nvml_probe.py "$out_dir/nvml-probe.json"
echo "nvml probe: $? expectation(s) failed"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '-' | tr -cd 'A-Za-z0-9-')
out=results/${gpu,,}-transformers-check
( while sleep 2; do date +%s; nvidia-smi --query-compute-apps=gpu_uuid,pid,process_name,used_memory \
    --format=csv,noheader; done ) > "$out_dir/compute-apps.log" 2>&1 &
logger=$!
timeout 420 python3 -m harness run benchmarks/gpu/llama-3.1-8b-transformers.yaml --out "$out" \
  || echo "harness exited with $?"
kill "$logger"
python3 - "$out" <<'PY'
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
for point in sorted(root.glob("cells/*/points/*.json")):
    p = json.loads(point.read_text())
    e, w = p["energy"], p["energy"]["window"]
    print(point.stem, f"{p['metrics']['output_throughput']:.1f} out tok/s",
          f"energy {e['energy_j']} J over {w['duration_s']:.1f} s (per GPU {w['energy_j_per_gpu']})",
          f"mean {e['mean_power_w']} W, idle {e['idle_power_w']} W,",
          f"{e['output_tokens_per_j']} out tok/J, samples {w['samples']}")
PY
tar czf "$out_dir/results.tgz" "$out" "$out_dir/nvml-probe.json" "$out_dir/compute-apps.log" \
  "$out_dir/nvidia-smi.txt" 2>/dev/null
