#!/usr/bin/env bash
# AudioSlots (blind separation as set prediction) on LibriMix or the built-in talkers, against
# Asteroid's ConvTasNet with PIT trained on the same mixtures for the same number of steps.
#   ./run.sh                              # stages 0-4 on built-in talkers (CPU, ~8 min)
#   ./run.sh --librimix_dir /data/Libri2Mix/wav8k/min/metadata --conf local/conf_librimix.yml
#   ./run.sh --stage 3 --tag mine         # evaluation and publishing of exp/mine
# Every setting lives in local/conf.yml (--conf FILE for another; n_src, task, subsets and
# sample rate for real LibriMix are there too); this script passes only paths and stages.
set -euo pipefail
invoked_from="$(pwd)"
cd "$(dirname "$0")"

# General
stage=0          # first stage to run
stop_stage=4     # last stage to run
tag=""           # experiment name (default: <dataset>_audioslots)
exp_dir=""       # experiment folder (default: exp/<tag>)
id=""            # GPU ids (CUDA_VISIBLE_DEVICES); empty: automatic
python_path=python
conf=""          # settings file (default: local/conf.yml)

# Data
librimix_dir=""  # a LibriMix metadata folder (LibriXMix/wav8k/min/metadata); empty: built-in
data_dir=data    # where stage 0 writes the talkers or the LibriMix subset folders

. utils/parse_options.sh

# Paths given on the command line are relative to where run.sh was invoked.
. utils/paths.sh
librimix_dir="$(absolute "${librimix_dir}")"

[ -n "${id}" ] && export CUDA_VISIBLE_DEVICES="${id}"
# A LibriMix subset is a folder of metadata CSVs; a built-in set is a CSV of clips or mixtures.
if [ -n "${librimix_dir}" ]; then
  dataset=librimix; train_set="${data_dir}/librimix/train"; ext=""
else
  dataset=builtin; train_set="${data_dir}/builtin/train.csv"; ext=".csv"
fi
[ -z "${tag}" ] && tag="${dataset}_audioslots"
[ -z "${exp_dir}" ] && exp_dir="exp/${tag}"
lists="${data_dir}/lists"

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  echo "Stage 0: ${dataset} talkers in ${data_dir}/${dataset}"
  ${python_path} local/prepare_data.py corpus --conf "${conf}" --data_dir "${data_dir}" \
    --librimix_dir "${librimix_dir}"
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  echo "Stage 1: fixed validation and test lists in ${lists}"
  ${python_path} local/prepare_data.py lists --conf "${conf}" --data_dir "${data_dir}" \
    --dataset "${dataset}"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  echo "Stage 2: training AudioSlots, then ConvTasNet (PIT) for as many steps, in ${exp_dir}"
  ${python_path} train.py --conf "${conf}" --train "${train_set}" --valid "${lists}/valid${ext}" \
    --exp_dir "${exp_dir}"
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  echo "Stage 3: evaluation on ${lists}/test${ext}"
  ${python_path} eval.py --conf "${conf}" --test "${lists}/test${ext}" --exp_dir "${exp_dir}"
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
  echo "Stage 4: publishing to ${exp_dir}/publish_dir"
  ${python_path} local/publish.py --exp_dir "${exp_dir}"
fi
