#!/usr/bin/env bash
# Word frequencies of text files (or stdin), most frequent first.
#
#   wordcount.sh [-n TOP] [FILE...]
#
# Prints "COUNT WORD" lines; ties are listed alphabetically. A word is a run of letters and
# digits, and counting ignores case ("The" and "the" are the same word).
set -euo pipefail

top=10
while getopts "n:" opt; do
  case "$opt" in
    n) top="$OPTARG" ;;
    *) echo "usage: wordcount.sh [-n TOP] [FILE...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

cat -- "$@" \
  | tr -s '[:space:]' '\n' \
  | grep -v '^$' \
  | sort \
  | uniq -c \
  | sort -k1,1nr -k2,2 \
  | head -n "$top" \
  | awk '{print $1, $2}'
