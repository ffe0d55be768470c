#!/usr/bin/env bash
# Paths given to a recipe's run.sh are relative to where the user ran it, not to the recipe.
# Source after `invoked_from="$(pwd)"`, the `cd` into the recipe and `. utils/parse_options.sh`.
# Makes conf, data_dir and exp_dir usable from the recipe folder, and defines `absolute PATH`
# for the recipe's own path options.
absolute() { if [ -z "$1" ] || [[ "$1" = /* ]]; then echo "$1"; else echo "${invoked_from}/$1"; fi; }
conf="$(absolute "${conf}")"
conf="${conf:-local/conf.yml}"
[[ "${data_dir}" = /* ]] || [ "${data_dir}" = data ] || data_dir="${invoked_from}/${data_dir}"
[ -z "${exp_dir}" ] || [[ "${exp_dir}" = /* ]] || exp_dir="${invoked_from}/${exp_dir}"
