#!/usr/bin/env bash
# The whole JUDO pipeline on one node of 4x H200: data -> stage 1 -> stage 2 -> stage 3 (JUDO) and the
# Base GRPO ablation. Safe to rerun after any interruption: data builders resume item by item, a
# finished stage (its output folder holds judo_training.json) is skipped, an unfinished one resumes
# from its newest checkpoint.
#
#   MMAD_ROOT=/data/MMAD train/launch_h200.sh                  # default steps
#   MMAD_ROOT=/data/MMAD train/launch_h200.sh stage3 base-grpo # only these steps
#   train/launch_h200.sh --dry-run                             # print what would run
#
# Steps: data1 data2 data3 stage1 stage2 stage3 base-grpo  (default, in this order)
#        dominj-stage2 grpo-dominj grpo-segjux-dominj       (Table 2 ablations, on request)
# Environment: MMAD_ROOT (required for data steps), REALIAD_ROOT (optional, stage-1 data),
#   TEACHER_BASE_URL / TEACHER_MODEL / TEACHER_KEY_ENV (default: OpenAI gpt-4o, key in OPENAI_API_KEY),
#   DATA_DIR (default data), NPROC (default 4), PYTHON (default .venv/bin/python, else python),
#   RECIPES (default train/recipes: the folder the step recipes are read from).
set -euo pipefail
cd "$(dirname "$0")/.."

DRY=0
if [[ "${1:-}" == "--dry-run" ]]; then DRY=1; shift; fi
STEPS=("$@")
[[ ${#STEPS[@]} -gt 0 ]] || STEPS=(data1 data2 data3 stage1 stage2 stage3 base-grpo)

DATA_DIR=${DATA_DIR:-data}
NPROC=${NPROC:-4}
RECIPES=${RECIPES:-train/recipes}
PYTHON=${PYTHON:-$([[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python)}
TEACHER=(--base-url "${TEACHER_BASE_URL:-https://api.openai.com/v1}" --model "${TEACHER_MODEL:-gpt-4o}"
         --api-key-env "${TEACHER_KEY_ENV:-OPENAI_API_KEY}")
export TOKENIZERS_PARALLELISM=false

say() { echo "[launch] $*"; }
run() { echo "+ $*"; if [[ $DRY == 0 ]]; then "$@"; fi; }

need_mmad() {
  if [[ -z "${MMAD_ROOT:-}" ]]; then
    if [[ $DRY == 1 ]]; then MMAD_ROOT='$MMAD_ROOT'; else say "set MMAD_ROOT to the MMAD folder (with mmad.json)"; exit 2; fi
  fi
}

# A data build is done when its manifest says complete; exit code 1 means some items failed (teacher
# hiccups): rerun up to 3 times, since each rerun only retries what is missing.
data_step() {
  local name=$1; shift
  local out="$DATA_DIR/$name"
  if [[ -f "$out/manifest.json" ]] && grep -q '"complete": true' "$out/manifest.json"; then
    say "$out is complete, skipping"; return 0
  fi
  need_mmad
  local attempt rc
  for attempt in 1 2 3; do
    set +e; run "$PYTHON" -m judo.cli data "$name" --mmad "$MMAD_ROOT" --out "$out" "$@" "${TEACHER[@]}"; rc=$?; set -e
    [[ $rc == 0 ]] && return 0
    [[ $rc == 1 ]] || { say "data $name failed (exit $rc)"; exit $rc; }
    say "data $name: some items failed, retrying them (attempt $attempt of 3)"
  done
  say "data $name still has failed items; see $out/failures.jsonl, then rerun this script"; exit 1
}

# A training stage: skip when finished, otherwise run (TRL resumes from output_dir's last checkpoint).
train_step() {
  local script=$1 recipe=$2 data=$3
  local out
  out=$(awk '/^output_dir:/ {print $2}' "$RECIPES/$recipe.yaml")
  if [[ -f "$out/judo_training.json" ]]; then say "$out is finished, skipping"; return 0; fi
  run "$PYTHON" -m torch.distributed.run --nproc_per_node "$NPROC" "train/$script" --config "$RECIPES/$recipe.yaml" \
      --data_dir "$DATA_DIR/$data"
}

for step in "${STEPS[@]}"; do
  say "step $step"
  case $step in
    data1) data_step stage1 ${REALIAD_ROOT:+--realiad "$REALIAD_ROOT"} ;;
    data2) data_step stage2 ;;
    data3) data_step stage3 --stage1 "$DATA_DIR/stage1" ;;
    stage1) train_step sft.py stage1 stage1 ;;
    stage2) train_step sft.py stage2 stage2 ;;
    stage3) train_step grpo.py stage3 stage3 ;;
    base-grpo) train_step grpo.py base_grpo stage3 ;;
    dominj-stage2) train_step sft.py dominj_stage2 stage2 ;;
    grpo-dominj) train_step grpo.py grpo_dominj stage3 ;;
    grpo-segjux-dominj) train_step grpo.py grpo_segjux_dominj stage3 ;;
    *) say "unknown step '$step'"; exit 2 ;;
  esac
done
say "done: ${STEPS[*]}"
