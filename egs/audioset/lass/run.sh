#!/usr/bin/env bash
# Language-queried source separation recipe: data, mixtures, training, evaluation, publishing.
#   ./run.sh                              # stages 0-4 on the built-in corpus (CPU, ~20 min)
#   ./run.sh --stage 2 --tag mine         # from training on, experiment exp/mine
#   ./run.sh --dataset manifest --train_manifest train.csv --test_manifest test.csv
#   ./run.sh --dataset audioset --audioset_dir /data/audioset
set -euo pipefail
cd "$(dirname "$0")"

# General
stage=0          # first stage to run
stop_stage=4     # last stage to run
tag=""           # experiment name (default: derived from the options)
id=""            # GPU ids (CUDA_VISIBLE_DEVICES); empty: automatic
python_path=python
conf=local/conf.yml   # training and data settings

# Data
dataset=synth    # synth | manifest | audioset
audioset_dir=""  # with --dataset audioset: clips and the official CSVs
train_manifest=""
test_manifest=""
clips_per_class=40
n_valid=48
n_test=120
data_dir=data

# Training (the rest of the defaults live in local/conf.yml)
epochs=""
devices=1        # GPUs (or processes) per node; >1 trains with DDP and synchronised BatchNorm
num_nodes=1
baseline=""      # convtasnet: also train and evaluate Asteroid's ConvTasNet (compare.md)

. utils/parse_options.sh

[ -n "${id}" ] && export CUDA_VISIBLE_DEVICES="${id}"
[ -z "${tag}" ] && tag="${dataset}_lassresunet"
exp_dir="exp/${tag}"
mixtures="${data_dir}/mixtures"
train_args=()
[ -n "${epochs}" ] && train_args+=(--epochs "${epochs}")
# The data stages must use the data settings of conf.yml.
conf_value() { ${python_path} -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['data'][sys.argv[2]])" "${conf}" "$1"; }
data_args=(--sample_rate "$(conf_value sample_rate)" --segment_seconds "$(conf_value segment_seconds)"
           --max_interferers "$(conf_value max_interferers)" --snr_low "$(conf_value snr_low)"
           --snr_high "$(conf_value snr_high)")

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  echo "Stage 0: clip manifests (${dataset}) in ${data_dir}"
  ${python_path} local/prepare_data.py manifests --data_dir "${data_dir}" --dataset "${dataset}" \
    --clips_per_class "${clips_per_class}" --train_manifest "${train_manifest}" \
    --test_manifest "${test_manifest}" --audioset_dir "${audioset_dir}" "${data_args[@]}"
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  echo "Stage 1: fixed validation and test mixtures in ${mixtures}"
  ${python_path} local/prepare_data.py mixtures --data_dir "${data_dir}" "${data_args[@]}" \
    --n_valid "${n_valid}" --n_test "${n_test}"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  echo "Stage 2: training in ${exp_dir}"
  ${python_path} train.py --conf "${conf}" --train_manifest "${data_dir}/train.csv" \
    --valid_csv "${mixtures}/valid.csv" --exp_dir "${exp_dir}" --devices "${devices}" \
    --num_nodes "${num_nodes}" \
    "${train_args[@]}"
  if [ "${baseline}" = convtasnet ]; then
    echo "Stage 2b: ConvTasNet baseline in ${exp_dir}/convtasnet (same data, same budget)"
    ${python_path} local/baseline_convtasnet.py train --conf "${conf}" \
      --train_manifest "${data_dir}/train.csv" --valid_csv "${mixtures}/valid.csv" \
      --exp_dir "${exp_dir}/convtasnet" "${train_args[@]}"
  fi
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  echo "Stage 3: evaluation on ${mixtures}/test.csv"
  ${python_path} eval.py --model_path "${exp_dir}/best_model.pth" \
    --test_csv "${mixtures}/test.csv" --out_dir "${exp_dir}/eval"
  if [ "${baseline}" = convtasnet ]; then
    ${python_path} local/baseline_convtasnet.py compare --exp_dir "${exp_dir}" \
      --test_csv "${mixtures}/test.csv"
  fi
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
  echo "Stage 4: publishing to ${exp_dir}/publish_dir"
  ${python_path} local/publish.py --exp_dir "${exp_dir}"
fi
