#!/usr/bin/env bash
# Layer check: every framework include in include/mt/**, src/**, tools/** and kernels/** must
# point at the including file's own layer or one below it. Fails naming file:line and both layers.
# Called by ctest as `bash layer_order_test.sh MOETRAIN SOURCE_DIR` (MOETRAIN is not used); by
# hand: `bash tests/cli/layer_order_test.sh - .`.
#
# Note [Layer order]: from the bottom up (DESIGN.md section 2 follows this list).
#   0 kernels   CUDA kernels: raw pointers, sizes and a stream. No framework types, so they build
#               with nvcc alone and can be tested and tuned apart from everything else.
#     math      header-only formulas both backends compile (MT_HOST_DEVICE, Philox, the scalar
#               unary/binary math), so the CPU and CUDA kernels compute the same numbers; it
#               includes nothing of the framework, and kernels may include it.
#   1 core      DType, Device, Shape, Storage, Tensor, allocators, streams, errors, RNG. Tensor
#               methods that need ops or the engine (to, clone, copy_, backward, the views) are
#               declared in tensor.h but defined above core: src/ops/tensor_methods.cpp,
#               src/ops/view_ops.cpp, src/autograd/tensor_backward.cpp.
#   2 graph     Node, Edge, SavedTensor, record_function, grad mode: the vocabulary ops record into.
#               It calls no op: AccumulateGrad::apply (which casts and adds) is defined in
#               src/autograd/accumulate_grad.cpp.
#   3 ops       public ops: check inputs, allocate, dispatch to the device's kernel (src/ops/cpu,
#               src/ops/cuda belong here), record graph nodes.
#   4 autograd  the engine that runs a graph backward, and gradcheck: both call ops. Also
#               Tensor::backward and AccumulateGrad::apply (see core and graph above).
#   5 dist      Communicator, expert-parallel all-to-all (differentiable, so it records nodes),
#               gradient buckets.
#   6 nn optim  modules and optimizers; one layer: optimizers step a Module's parameters.
#   7 data io   tokenizers, shards, loader; recipes and checkpoints. Checkpoints read and write
#               tensors; recipes are plain structs. Nothing below knows a recipe exists: what a
#               recipe means for a model (gpt_config_from_recipe) is said in train/.
#   8 train     the loop, distillation, checkpoint cadence: puts everything below together.
#   9 tools     the moetrain binary; tools/report (what `compare` reads and draws) is a library
#               of it that tests link too.
# Folders under a layer (src/ops/cuda, src/core/cuda, src/dist/cuda) belong to that layer.
# A folder that is not in this list is an error, so a new layer gets a place here first.
set -uo pipefail
SRC=${2:-.}
cd "$SRC" || exit 1
[[ -d include/mt && -d src && -d tools ]] || { echo "layer check: no include/mt, src, tools under '$SRC'"; exit 1; }

declare -A RANK=([kernels]=0 [math]=0 [core]=1 [graph]=2 [ops]=3 [autograd]=4 [dist]=5 [nn]=6 [optim]=6
                 [data]=7 [io]=7 [train]=8 [tools]=9)

# Known upward includes, each "file:header", waiting for their fix. Only these pass; an entry that
# no longer matches an include fails too, so the list only shrinks. Empty: none is left.
ALLOW=()

layer_of() {  # path -> its layer's folder name (include-root / src-root: outside any layer folder)
  local p=$1
  case $p in
    include/mt/*/*) p=${p#include/mt/}; echo "${p%%/*}" ;;
    include/*) echo "include-root" ;;
    src/*/*) p=${p#src/}; echo "${p%%/*}" ;;
    src/*) echo "src-root" ;;
    tools/*) echo tools ;;
    kernels/*) echo kernels ;;
  esac
}

MT_INCLUDE='#[[:space:]]*include[[:space:]]*["<](mt/([A-Za-z0-9_]+)/[^">]+)[">]'
RELATIVE_INCLUDE='#[[:space:]]*include[[:space:]]*"(\.\./[^"]*)"'
fails=0
declare -A used
while IFS= read -r hit; do
  file=${hit%%:*}
  rest=${hit#*:}
  line=${rest%%:*}
  text=${rest#*:}
  from=$(layer_of "$file")
  if [[ -z ${RANK[$from]+x} ]]; then
    echo "FAIL $file:$line: '$from' is not a layer in Note [Layer order] (tests/cli/layer_order_test.sh)"
    fails=$((fails + 1))
    continue
  fi
  if [[ $text =~ $MT_INCLUDE ]]; then
    header=${BASH_REMATCH[1]}
    to=${BASH_REMATCH[2]}
  elif [[ $text =~ $RELATIVE_INCLUDE ]]; then
    echo "FAIL $file:$line: relative include \"${BASH_REMATCH[1]}\" climbs out of its folder; include \"mt/<layer>/...\""
    fails=$((fails + 1))
    continue
  else
    continue
  fi
  if [[ -z ${RANK[$to]+x} ]]; then
    echo "FAIL $file:$line: $from includes $header, whose folder '$to' is not a layer in Note [Layer order]"
    fails=$((fails + 1))
    continue
  fi
  if ((RANK[$to] > RANK[$from])); then
    key="$file:$header"
    allowed=0
    for a in "${ALLOW[@]}"; do [[ $a == "$key" ]] && allowed=1; done
    if ((allowed)); then
      used[$key]=1
      echo "allowed (listed) $file:$line: $from includes $header ($to)"
    else
      echo "FAIL $file:$line: $from (layer ${RANK[$from]}) includes $header from $to (layer ${RANK[$to]}), a higher layer"
      fails=$((fails + 1))
    fi
  fi
done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<](mt/|\.\./)' include src tools kernels \
           --include='*.h' --include='*.hpp' --include='*.cpp' --include='*.cc' --include='*.cu' \
           --include='*.cuh' | sort -t: -k1,1 -k2,2n)

for a in "${ALLOW[@]}"; do
  if [[ -z ${used[$a]+x} ]]; then
    echo "FAIL allow-list entry '$a' matches no upward include any more: remove it from tests/cli/layer_order_test.sh"
    fails=$((fails + 1))
  fi
done

if ((fails)); then
  echo "layer check: $fails problem(s); see Note [Layer order] in tests/cli/layer_order_test.sh"
  exit 1
fi
echo "layer check: every include runs down or sideways (${#ALLOW[@]} listed exceptions)"
