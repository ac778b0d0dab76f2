// Staged knowledge distillation: when KD stops, and the teacher's checks against the student.
#include "mt/train/distillation.h"

#include <algorithm>
#include <cmath>

namespace mt {

int64_t distillation_stop_step(const Recipe& r) {
  const int64_t steps = r.train.steps;
  const double stop = r.distill.stop_at;
  if (r.distill.teacher.empty() || stop == 0.0) return steps;
  if (stop <= 1.0) return std::llround(stop * static_cast<double>(steps));
  return std::min<int64_t>(static_cast<int64_t>(stop), steps);
}

LoadedModel load_teacher(const Recipe& student, Device device, const Communicator& world) {
  const std::string& path = student.distill.teacher;
  MT_CHECK(!path.empty(), "distill.teacher: no teacher checkpoint named");
  LoadedModel t;
  try {
    t = load_model(path, device.str(), {}, &world, student.dist.ep, student.dist.node_size);
  } catch (const Error& e) {
    MT_FAIL("distill.teacher = '", path, "': ", e.what());
  }
  const ModelSection& tm = t.recipe.model;
  MT_CHECK(tm.vocab_size == student.model.vocab_size, "distill.teacher = '", path, "': the teacher's vocabulary has ",
           tm.vocab_size, " tokens but the student's (model.vocab_size) has ", student.model.vocab_size,
           "; teacher and student must share a tokenizer");
  MT_CHECK(tm.seq_len >= student.model.seq_len, "distill.teacher = '", path, "': the teacher's context is ",
           tm.seq_len, " tokens, shorter than the student's model.seq_len = ", student.model.seq_len);
  return t;
}

}  // namespace mt
