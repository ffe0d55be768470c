#!/usr/bin/env bash
# Meta-TasNet on MUSDB18 (or the built-in music corpus): data, training, evaluation, publishing.
#   ./run.sh                              # stages 0-3 on the built-in corpus (CPU, ~6 min)
#   ./run.sh --musdb_root /data/musdb18hq --conf local/conf_paper.yml --tag paper
#   ./run.sh --stage 2 --tag mine         # evaluation and publishing of exp/mine
# Every setting lives in local/conf.yml (--conf FILE for another); this script passes only
# paths and stage numbers. Training also trains the baseline (Asteroid's ConvTasNet with four
# ordered outputs) for the same number of steps; evaluation compares both per stem.
set -euo pipefail
invoked_from="$(pwd)"
cd "$(dirname "$0")"

# General
stage=0          # first stage to run
stop_stage=3     # last stage to run
tag=""           # experiment name (default: <data>_metatasnet)
exp_dir=""       # experiment folder (default: exp/<tag>)
id=""            # GPU ids (CUDA_VISIBLE_DEVICES); empty: automatic
python_path=python
conf=""          # settings file (default: local/conf.yml)

# Data
musdb_root=""    # MUSDB18 or MUSDB18-HQ folder (train/, test/); empty: the built-in corpus
data_dir=data    # where stage 0 writes the built-in corpus and the validation song list

. utils/parse_options.sh

# Paths given on the command line are relative to where run.sh was invoked.
. utils/paths.sh
musdb_root="$(absolute "${musdb_root}")"

[ -n "${id}" ] && export CUDA_VISIBLE_DEVICES="${id}"
if [ -z "${tag}" ]; then
  if [ -n "${musdb_root}" ]; then tag="musdb18_metatasnet"; else tag="synth_metatasnet"; fi
fi
[ -z "${exp_dir}" ] && exp_dir="exp/${tag}"
root="${musdb_root:-${data_dir}/music}"
valid_tracks="${data_dir}/valid_tracks.txt"

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  echo "Stage 0: songs in ${root}, validation songs in ${valid_tracks}"
  ${python_path} local/prepare_data.py --conf "${conf}" --data_dir "${data_dir}" \
    --musdb_root "${musdb_root}"
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  echo "Stage 1: training Meta-TasNet and the ConvTasNet baseline in ${exp_dir}"
  ${python_path} train.py --conf "${conf}" --root "${root}" --valid_tracks "${valid_tracks}" \
    --exp_dir "${exp_dir}"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  echo "Stage 2: evaluation on the test songs of ${root}"
  ${python_path} eval.py --conf "${conf}" --root "${root}" --exp_dir "${exp_dir}"
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  echo "Stage 3: publishing to ${exp_dir}/publish_dir"
  ${python_path} local/publish.py --exp_dir "${exp_dir}"
fi
