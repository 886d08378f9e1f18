#!/usr/bin/env bash
# Chain every training stage, each in a time box, resuming any stage that already has a checkpoint.
# Usage: training/train_all.sh DATA.npz RUN_DIR PRESET DEVICE "PHASE MANIFOLD SAMPLER PREDICTOR minutes" [BATCH]
#   e.g. training/train_all.sh out/bandai.npz runs/small small cuda "1 2.5 4.5 1" 256
# Re-running the same command continues every stage where it stopped (extend with more minutes per call).
set -euo pipefail
data=$1 run=$2 preset=$3 device=$4
read -r m_phase m_manifold m_sampler m_pred <<<"$5"
batch=${6:-}
# Use the installed console script; otherwise (e.g. the bare GPU machine) python3 with a namespace shim that maps
# rsmt_studio.<room> onto this checkout's top-level folders, as pyproject.toml's package-dir does.
if command -v rsmt-studio >/dev/null; then
  cli=(rsmt-studio train)
else
  py=${PYTHON:-python3}
  if ! "$py" -c "import rsmt_studio.training" 2>/dev/null; then
    root=$(cd "$(dirname "$0")/.." && pwd)
    ns=$(mktemp -d)
    mkdir -p "$ns/rsmt_studio"
    for room in app motion training inference viewer kernels assets; do ln -s "$root/$room" "$ns/rsmt_studio/$room"; done
    export PYTHONPATH="$ns${PYTHONPATH:+:$PYTHONPATH}"
  fi
  cli=("$py" -m rsmt_studio.app.cli train)
fi
stage() {  # stage NAME MINUTES [extra args]
  local name=$1 minutes=$2; shift 2
  local resume=() cfg=(--preset "$preset")
  [[ -f "$run/config.json" ]] && cfg=()
  [[ -f "$run/$name.ckpt" ]] && resume=(--resume --epochs 100000)
  "${cli[@]}" "$name" --data "$data" --run "$run" --device "$device" --quiet --minutes "$minutes" \
    "${cfg[@]}" "${resume[@]}" ${batch:+--batch "$batch"} "$@"
}
stage phase "$m_phase"
[[ -f "$run/phases.npz" && "$run/phases.npz" -nt "$run/phase.safetensors" ]] || \
  "${cli[@]}" label-phases --data "$data" --run "$run" --device "$device" --quiet
stage manifold "$m_manifold"
stage sampler "$m_sampler"
stage phase-predictor "$m_pred"
"${cli[@]}" check --data "$data" --run "$run" --device "$device" --no-mirror
