#!/usr/bin/env bash
# The one prepared GPU check (about 6 minutes): run on a lent GPU machine from the project root,
# after `bash ../shared/gpu/fetch-wheels.sh` here put the missing wheels into .whl/:
#   bash benchmarks/gpu/check.sh
# It writes results/<gpu>-transformers-check/ and packs it into $OUT/results.tgz.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '-' | tr -cd 'A-Za-z0-9-')
out=results/${gpu,,}-transformers-check
nvidia-smi > "${OUT:-/tmp}/nvidia-smi.txt"
timeout 420 python3 -m harness.cli run benchmarks/gpu/llama-3.1-8b-transformers.yaml --out "$out" \
  || echo "harness exited with $?"
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
tar czf "${OUT:-/tmp}/results.tgz" "$out"
