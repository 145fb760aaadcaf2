#!/usr/bin/env bash
# The README as a newcomer follows it, on a fresh clone: the quick start's run command
# (in the background), then every line of the walkthrough between the `newcomer:` markers
# — run as written, from the clone and then from another directory, each `#> text` checked
# against what the command printed. Any step that fails or prints something else fails
# the script. Run by .ci/run after the tests.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
say() { printf 'newcomer: %s\n' "$*" >&2; }
fail() { say "FAILED: $*"; [ -f "$work/serve.log" ] && tail -n 30 "$work/serve.log" >&2; exit 1; }

say "cloning into $work/clone"
git clone -q "$repo" "$work/clone"
# The working tree's uncommitted changes too, so the script checks what is about to land.
(cd "$repo" && git diff HEAD) | (cd "$work/clone" && git apply --allow-empty 2>/dev/null || true)
(cd "$repo" && git ls-files --others --exclude-standard -z) | (cd "$repo" && xargs -0 -r cp --parents -t "$work/clone")
cd "$work/clone"
# Reuse the repo's compiled dependencies (a clean build is measured elsewhere).
export CARGO_TARGET_DIR="$repo/target"
# A newcomer's own home (no saved login), with this machine's Rust toolchain.
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export PORTCULLIS_CONFIG_DIR="$work/config" HOME="$work/home"
mkdir -p "$HOME"
for port in 8009 15432 13306; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then fail "port $port is taken: stop what listens there"; fi
done

# The README's run command, exactly.
run_command=$(sed -n '/^## Quick start/,/^## Using it/p' README.md | grep -m1 '^    scripts/services.sh' | sed 's/^    //')
[ "$run_command" = "scripts/services.sh && cargo run -- serve" ] || fail "unexpected run command: $run_command"
say "running: $run_command"
bash -c "$run_command" >"$work/serve.log" 2>&1 &
server=$!
# Under `set -e` a failing command in the trap would end the script with its status:
# neither may fail (the server may be gone already).
trap 'kill $server 2>/dev/null || true; pkill -f "$CARGO_TARGET_DIR/debug/portcullis serve" 2>/dev/null || true' EXIT
for _ in $(seq 1 900); do
  grep -q "MySQL listener ready" "$work/serve.log" 2>/dev/null && break
  kill -0 $server 2>/dev/null || fail "the gateway stopped"
  sleep 1
done
grep -q "MySQL listener ready" "$work/serve.log" || fail "the gateway did not start"
export PATH="$CARGO_TARGET_DIR/debug:$PATH"

# The walkthrough, line by line.
n=0
while IFS= read -r line; do
  cmd="${line#    }"
  [ -z "$cmd" ] && continue
  n=$((n + 1))
  if [[ "$cmd" == *"#> "* ]]; then
    expected="${cmd##*#> }"
    cmd="${cmd%%#> *}"
    say "$n: $cmd"
    out=$(eval "$cmd" 2>&1) || fail "step $n exited non-zero: $cmd"$'\n'"$out"
    grep -qF -- "$expected" <<<"$out" || fail "step $n printed no \`$expected\`: $cmd"$'\n'"$out"
  else
    say "$n: $cmd"
    eval "$cmd" || fail "step $n exited non-zero: $cmd"
  fi
done < <(sed -n '/<!-- newcomer:begin -->/,/<!-- newcomer:end -->/p' "$work/clone/README.md" | grep '^    ')
say "the walkthrough works ($n steps)"
