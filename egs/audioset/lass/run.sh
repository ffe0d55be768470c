#!/usr/bin/env bash
# Language-queried source separation recipe: data, mixtures, training, evaluation, publishing.
#   ./run.sh                              # stages 0-4 on the built-in corpus (2 CPU cores, 25-36 min)
#   ./run.sh --stage 2 --tag mine         # from training on, experiment exp/mine
#   ./run.sh --dataset manifest --train_manifest train.csv --test_manifest test.csv
#                                         # your own clips: twice the training (46-80 min)
#   ./run.sh --dataset audioset --audioset_dir /data/audioset
# Every setting lives in local/conf.yml (--conf FILE for another); this script passes only
# paths, the data source and stage numbers.
set -euo pipefail
invoked_from="$(pwd)"
cd "$(dirname "$0")"

# General
stage=0          # first stage to run
stop_stage=4     # last stage to run
tag=""           # experiment name (default: <dataset>_<model>)
exp_dir=""       # experiment folder (default: exp/<tag>)
id=""            # GPU ids (CUDA_VISIBLE_DEVICES); empty: automatic
python_path=python
conf=""        # settings file (default: local/conf.yml)

# Data
dataset=synth    # synth (built-in corpus) | manifest | audioset (your data: twice the training)
audioset_dir=""  # with --dataset audioset: clips and the official CSVs
train_manifest=""
test_manifest=""
data_dir=data
baseline=""      # convtasnet: also train and evaluate Asteroid's ConvTasNet (compare.md)

. utils/parse_options.sh

# Paths given on the command line are relative to where run.sh was invoked.
. utils/paths.sh
train_manifest="$(absolute "${train_manifest}")"
test_manifest="$(absolute "${test_manifest}")"
audioset_dir="$(absolute "${audioset_dir}")"

[ -n "${id}" ] && export CUDA_VISIBLE_DEVICES="${id}"
[ -z "${tag}" ] && tag="${dataset}_lassresunet"
[ -z "${exp_dir}" ] && exp_dir="exp/${tag}"
mixtures="${data_dir}/mixtures"

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  echo "Stage 0: clip manifests (${dataset}) in ${data_dir}"
  ${python_path} local/prepare_data.py manifests --conf "${conf}" --data_dir "${data_dir}" \
    --dataset "${dataset}" --train_manifest "${train_manifest}" \
    --test_manifest "${test_manifest}" --audioset_dir "${audioset_dir}"
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  echo "Stage 1: fixed validation and test mixtures in ${mixtures}"
  ${python_path} local/prepare_data.py mixtures --conf "${conf}" --data_dir "${data_dir}" \
    --dataset "${dataset}"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  echo "Stage 2: training in ${exp_dir}"
  ${python_path} train.py --conf "${conf}" --train_manifest "${data_dir}/train.csv" \
    --valid_csv "${mixtures}/valid.csv" --exp_dir "${exp_dir}" --baseline "${baseline}" \
    --dataset "${dataset}"
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  echo "Stage 3: evaluation on ${mixtures}/test.csv"
  ${python_path} eval.py --conf "${conf}" --exp_dir "${exp_dir}" --test_csv "${mixtures}/test.csv"
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
  echo "Stage 4: publishing to ${exp_dir}/publish_dir"
  ${python_path} local/publish.py --exp_dir "${exp_dir}"
fi
