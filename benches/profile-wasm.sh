#!/usr/bin/env bash
# Where a request's wasm instructions go, per function and loop: builds the filter with names,
# instruments it with binaryen's --log-execution (a call at every function entry and loop header),
# runs bench-host on it (host-test charges the fuel between two events to the first) and prints
# the top locations per setup with their function names.
#   benches/profile-wasm.sh [SETUP-FILTER]   e.g. benches/profile-wasm.sh demo
set -euo pipefail
cd "$(dirname "$0")/.."
filter=${1:-}
out=target/profile-wasm
mkdir -p "$out"
CARGO_PROFILE_WASM_STRIP=false CARGO_TARGET_DIR=$out/target \
  cargo build -q --profile wasm --target wasm32-wasip1 -p sluice-filter
flags="--enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals --enable-simd"
# Same optimisation as `make wasm`, then the instrumentation on the optimised code.
wasm-opt -O3 --one-caller-inline-max-function-size 0 --flexible-inline-max-function-size 0 $flags \
  -g --strip-dwarf "$out/target/wasm32-wasip1/wasm/sluice.wasm" --log-execution -o "$out/sluice.wasm"
wasm-opt $flags "$out/sluice.wasm" --print 2>/dev/null > "$out/sluice.wat"
cargo build -q --release -p sluice-benches --bin bench-host
SLUICE_WASM=$out/sluice.wasm target/release/bench-host 2>"$out/profile.txt" >/dev/null || true
python3 - "$out/sluice.wat" "$out/profile.txt" "$filter" <<'PY'
import re, sys
wat, prof, want = sys.argv[1:4]
owner, func = {}, None
pending = False
text = open(wat).read()
m = re.search(r'\(import "env" "log_execution" \(func \$(\S+)', text)
call = 'call $' + (m.group(1) if m else 'log_execution')
for line in text.splitlines():
    m = re.match(r'\s*\(func \$(\S+)', line)
    if m:
        func = m.group(1)
    if call in line.split(';;')[0] and line.strip().startswith('(' + call):
        pending = True
    if pending:
        m = re.search(r'\(i32\.const (-?\d+)\)', line)
        if m:
            owner[int(m.group(1))] = func
            pending = False
for line in open(prof):
    if not line.startswith('profile ') or want not in line.split(':')[0]:
        continue
    name, _, rest = line[len('profile '):].partition(': ')
    print(f'== {name}')
    for item in rest.split():
        i, f = item.split(':')
        print(f'{int(f):>8}  [{i}] {owner.get(int(i), "?")[:110]}')
PY
