#!/usr/bin/env bash
# Instructions per request (valgrind callgrind, so a busy machine does not disturb it):
#   benches/instructions.sh examples/flags.json [authority]
# Runs the `profile` example with 0 and 10×64 requests and prints the difference ÷ 640.
set -euo pipefail
config=${1:-examples/flags.json}
authority=${2:-www.acme-shop.example}
bin=target/release/examples/profile
count() {
  SLUICE_ITERATIONS=$1 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$config" 0 "$authority" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
base=$(count 0)
loaded=$(count 10)
echo "$config: $(( (loaded - base) / 640 )) instructions/request"
