#!/usr/bin/env bash
# What to run the first time one NVIDIA GPU is available (under 8 minutes on samples):
#   1. the CUDA tests (pytest -m cuda),
#   2. esr evaluate clb_imdn imdn_baseline --device cuda on the samples, rounds until decided,
#   3. two lanes on one GPU (issue 22: cold first call alone, bounded workers, NVML per lane),
#   4. esr compare on the known-cost pair 2% apart, and on two identical copies.
# Each figure is printed on one line as "name: value". --dry-run prints the commands it would run
# and checks on the CPU that the figures can be read (a tiny fixed-round compare), for CI.
#
#   bash benchmarks/gpu_acceptance.sh            # on the GPU machine, from the repository root
#   bash benchmarks/gpu_acceptance.sh --dry-run  # anywhere
set -euo pipefail

PYTHON=${PYTHON:-python}
OUT=${OUT:-$(mktemp -d)}
DRY=0
if [[ "${1:-}" == "--dry-run" ]]; then DRY=1; fi

esr() { "$PYTHON" -m harness.cli "$@"; }

# One line per figure of a run document or a compare JSON.
figures() {
  "$PYTHON" - "$@" <<'PY'
import json, sys
kind, path = sys.argv[1], sys.argv[2]
doc = json.load(open(path))
if kind == "evaluate":
    for r in doc["results"]:
        print(f"{r['submission']} runtime_ms_mean: {r['runtime_ms']['mean']:.3f}")
        print(f"{r['submission']} rounds_used: {r.get('rounds_used')} ({r.get('stop_reason')})")
        for c in r.get("constraints", []):
            if c["name"] == "runtime":
                low, high = c["interval"] or (None, None)
                print(f"{r['submission']} runtime_ratio: {c['value']:.4f} [{low}, {high}] {c['verdict']}")
elif kind == "lanes":
    for lane in doc["lanes"]:
        state = lane.get("device_state") or {}
        for when in ("before", "after"):
            snap = state.get(when) or {}
            print(f"lane {lane['lane']} ({lane['label']}) {when}: sm {snap.get('sm_clock_mhz')} MHz, "
                  f"{snap.get('temperature_c')} C, P{snap.get('performance_state')}")
    for r in doc["results"]:
        print(f"{r['submission']} first_call_ms: {r['runtime_ms']['first_call_ms']}"
              f" (lane {r['timed_on']['lane']}, cold call alone on its GPU)")
else:
    for c in doc["compared"]:
        low, high = c["interval"] or (None, None)
        print(f"{c['submission']} vs {doc['reference']}: {c['decision']} ratio {c['ratio']} [{low}, {high}]"
              f" after {c['rounds_used']} rounds ({c['stop_reason']})")
PY
}

run() {
  echo "+ $*"
  if [[ $DRY -eq 0 ]]; then "$@"; fi
}

if [[ $DRY -eq 1 ]]; then
  echo "dry run: commands only, then a CPU check that the figures are read"
fi

start=$(date +%s)
run "$PYTHON" -m pytest -q -m cuda
run esr evaluate clb_imdn imdn_baseline --data samples --device cuda --force --json "$OUT/evaluate.json" --out "$OUT/evaluate"
[[ $DRY -eq 0 ]] && figures evaluate "$OUT/evaluate.json"
# Issue 22's paths in a real run: two lanes on one GPU (the cold first call alone on it, bounded
# workers, timing subgroups of 2), each lane's NVML state before and after timing.
run esr evaluate clb_imdn imdn_baseline rfdn_baseline --data samples --devices cuda:0,cuda:0 --rounds 2 \
  --workers-per-device 2 --force --json "$OUT/two_lanes.json" --out "$OUT/two_lanes"
[[ $DRY -eq 0 ]] && figures lanes "$OUT/two_lanes.json"
run esr compare known_cost known_cost_plus2 --data samples --device cuda --force --json "$OUT/compare.json" || true
[[ $DRY -eq 0 ]] && figures compare "$OUT/compare.json"
run esr compare known_cost known_cost_copy --data samples --device cuda --force --json "$OUT/copy.json" || true
[[ $DRY -eq 0 ]] && figures compare "$OUT/copy.json"

if [[ $DRY -eq 1 ]]; then
  esr compare known_cost known_cost_copy --data samples --device cpu --rounds 2 --warmup-seconds 0 \
    --force --cache-dir "$OUT/cache" --quiet --json "$OUT/dry.json" >/dev/null || true
  figures compare "$OUT/dry.json"
fi
echo "seconds: $(( $(date +%s) - start ))"
