#!/usr/bin/env bash
# Task-aware unified source separation (TUSS): one model, one output per prompt, for speech
# enhancement, speech separation, music, cinematic and universal separation.
#   ./run.sh                              # stages 0-4 on the built-in corpus (CPU, ~20 min)
#   ./run.sh --stage 2 --tag mine         # from training on, experiment exp/mine
#   ./run.sh --dataset manifest --train_manifest train.csv --test_manifest test.csv
#   ./run.sh --conf local/conf_medium.yml # the released configuration (GPU)
# Manifests need a category column (a prompt name per clip: speech, sfx, sfxbg, drums, bass,
# vocals, other, musicbg). Every setting lives in local/conf.yml (--conf FILE for another);
# this script passes only paths and stage numbers.
set -euo pipefail
invoked_from="$(pwd)"
cd "$(dirname "$0")"

# General
stage=0          # first stage to run
stop_stage=4     # last stage to run
tag=""           # experiment name (default: <dataset>_tuss)
exp_dir=""       # experiment folder (default: exp/<tag>)
id=""            # GPU ids (CUDA_VISIBLE_DEVICES); empty: automatic
python_path=python
conf=""          # settings file (default: local/conf.yml)

# Data
dataset=builtin  # builtin | manifest
train_manifest=""
test_manifest=""
data_dir=data

. utils/parse_options.sh

# Paths given on the command line are relative to where run.sh was invoked.
. utils/paths.sh
train_manifest="$(absolute "${train_manifest}")"
test_manifest="$(absolute "${test_manifest}")"

[ -n "${id}" ] && export CUDA_VISIBLE_DEVICES="${id}"
[ -z "${tag}" ] && tag="${dataset}_tuss"
[ -z "${exp_dir}" ] && exp_dir="exp/${tag}"
lists="${data_dir}/lists"

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  echo "Stage 0: clip manifests with categories (${dataset}) in ${data_dir}"
  ${python_path} local/prepare_data.py manifests --conf "${conf}" --data_dir "${data_dir}" \
    --dataset "${dataset}" --train_manifest "${train_manifest}" \
    --test_manifest "${test_manifest}"
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  echo "Stage 1: fixed validation and test lists per task in ${lists}"
  ${python_path} local/prepare_data.py lists --conf "${conf}" --data_dir "${data_dir}"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  echo "Stage 2: training (unified model, then the task specialist) in ${exp_dir}"
  ${python_path} train.py --conf "${conf}" --train_manifest "${data_dir}/train.csv" \
    --lists_dir "${lists}" --exp_dir "${exp_dir}"
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  echo "Stage 3: evaluation per task on ${lists}/test_*.csv"
  ${python_path} eval.py --conf "${conf}" --exp_dir "${exp_dir}" --lists_dir "${lists}"
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
  echo "Stage 4: publishing to ${exp_dir}/publish_dir"
  ${python_path} local/publish.py --exp_dir "${exp_dir}"
fi
