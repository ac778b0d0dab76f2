# Sourced by the scripts that read benchmark summary lines (`bench-step: step_ms=... tokens_per_s=...`,
# bench/torch_ref.py's `torch-ref: ...`): scripts/bench-vs-torch.sh, scripts/gpu-multi.sh.

# field FILE PREFIX KEY: the value of KEY= on FILE's last line starting with PREFIX, or "-".
field() {
  local v
  v=$(grep "^$2:" "$1" 2>/dev/null | tail -1 | sed -n "s/.* $3=\([0-9.]*\).*/\1/p") || true
  echo "${v:--}"
}
