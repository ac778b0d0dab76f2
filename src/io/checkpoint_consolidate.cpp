// A checkpoint in any form (a sharded folder, usually) rewritten as one file, for sharing.
#include <vector>

#include "mt/io/checkpoint_source.h"

namespace mt {

void consolidate_checkpoint(const CheckpointSource& source, const std::filesystem::path& out) {
  CheckpointWriter w(out);
  std::vector<unsigned char> buffer;
  for (const std::string& name : source.names()) {
    const TensorInfo& info = source.info(name);
    buffer.resize(static_cast<size_t>(info.numel()) * dtype_size(info.dtype));
    source.read(name, info.dtype, info.shape, buffer.data());
    w.write(name, info.dtype, info.shape, buffer.empty() ? nullptr : buffer.data());
  }
  const CheckpointReader& m = source.meta();
  for (const std::string& key : m.meta_keys()) {
    if (key.rfind("sharded.", 0) == 0) continue;
    switch (m.meta_kind(key)) {
      case MetaKind::kInt: w.write_int(key, m.read_int(key)); break;
      case MetaKind::kDouble: w.write_double(key, m.read_double(key)); break;
      case MetaKind::kString: w.write_string(key, m.read_string(key)); break;
      case MetaKind::kU64s: w.write_u64s(key, m.read_u64s(key)); break;
    }
  }
  w.commit();
}

}  // namespace mt
