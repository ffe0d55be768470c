#!/usr/bin/env bash
# Kaldi-style option parsing for recipes: `--name value` sets the shell variable `name`
# (dashes become underscores) when the script defined it beforehand. Source it after the
# defaults: `. utils/parse_options.sh`.
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      echo "Options: any variable defined above '. utils/parse_options.sh', as --name value"
      exit 0 ;;
    --*)
      name=$(echo "${1#--}" | tr '-' '_')
      if [ -z "${name}" ] || ! declare -p "${name}" >/dev/null 2>&1; then
        echo "$0: unknown option $1" >&2
        exit 1
      fi
      if [ $# -lt 2 ]; then
        echo "$0: option $1 needs a value" >&2
        exit 1
      fi
      printf -v "${name}" '%s' "$2"
      shift 2 ;;
    *)
      echo "$0: unexpected argument $1 (options are --name value)" >&2
      exit 1 ;;
  esac
done
