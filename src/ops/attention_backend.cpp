// The attention backend switches and call counters of mt/ops/attention_backend.h, initialised from
// MT_ATTENTION and MT_ATTENTION_DETERMINISTIC (an unknown value is an error naming the valid ones).
#include "mt/ops/attention_backend.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "mt/core/error.h"

namespace mt {

namespace {

AttentionBackend backend_from_env() {
  const char* v = std::getenv("MT_ATTENTION");
  std::string s = v ? v : "auto";
  if (s == "auto") return AttentionBackend::kAuto;
  if (s == "cudnn") return AttentionBackend::kCudnn;
  if (s == "flash") return AttentionBackend::kFlash;
  MT_FAIL("MT_ATTENTION: expected auto, cudnn or flash, got '", s, "'");
}

Determinism determinism_from_env() {
  const char* v = std::getenv("MT_ATTENTION_DETERMINISTIC");
  std::string s = v ? v : "1";
  if (s == "1") return Determinism::kRequired;
  if (s == "0") return Determinism::kNotRequired;
  MT_FAIL("MT_ATTENTION_DETERMINISTIC: expected 1 or 0, got '", s, "'");
}

std::atomic<AttentionBackend>& backend_flag() {
  static std::atomic<AttentionBackend> flag{backend_from_env()};
  return flag;
}

std::atomic<Determinism>& determinism_flag() {
  static std::atomic<Determinism> flag{determinism_from_env()};
  return flag;
}

std::atomic<int64_t> counts[4];  // cudnn fwd, cudnn bwd, own fwd, own bwd

}  // namespace

void set_attention_backend(AttentionBackend backend) { backend_flag().store(backend); }
AttentionBackend attention_backend() { return backend_flag().load(); }
void set_attention_determinism(Determinism determinism) { determinism_flag().store(determinism); }
Determinism attention_determinism() { return determinism_flag().load(); }

const char* attention_backend_name(AttentionBackend backend) {
  switch (backend) {
    case AttentionBackend::kAuto: return "auto";
    case AttentionBackend::kCudnn: return "cudnn";
    case AttentionBackend::kFlash: return "flash";
  }
  return "?";
}

AttentionCounts attention_counts() {
  return {counts[0].load(), counts[1].load(), counts[2].load(), counts[3].load()};
}

void count_attention(AttentionBackend ran, AttentionPass pass) {
  MT_ASSERT(ran != AttentionBackend::kAuto);
  ++counts[(ran == AttentionBackend::kCudnn ? 0 : 2) + (pass == AttentionPass::kBackward ? 1 : 0)];
}

}  // namespace mt
