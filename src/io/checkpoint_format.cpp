// Type mapping, naming rule and root-checksum folding of the checkpoint format (Note [Checkpoint format]).
#include "mt/io/checkpoint_format.h"

#include "mt/io/checkpoint_crc32.h"

namespace mt::ckpt {

hid_t file_type(DType t) {
  switch (t) {
    case DType::kF32: return H5T_IEEE_F32LE;
    case DType::kF64: return H5T_IEEE_F64LE;
    case DType::kBF16: return H5T_STD_U16LE;
    case DType::kF16: return H5T_STD_U16LE;
    case DType::kI32: return H5T_STD_I32LE;
    case DType::kI64: return H5T_STD_I64LE;
    case DType::kBool: return H5T_STD_U8LE;
  }
  MT_FAIL("checkpoint: unknown dtype ", static_cast<int>(t));
}

hid_t mem_type(DType t) {
  static_assert(sizeof(bool) == 1, "bool tensors are stored as one byte per element");
  switch (t) {
    case DType::kF32: return H5T_NATIVE_FLOAT;
    case DType::kF64: return H5T_NATIVE_DOUBLE;
    case DType::kBF16: return H5T_NATIVE_UINT16;
    case DType::kF16: return H5T_NATIVE_UINT16;
    case DType::kI32: return H5T_NATIVE_INT32;
    case DType::kI64: return H5T_NATIVE_INT64;
    case DType::kBool: return H5T_NATIVE_UINT8;
  }
  MT_FAIL("checkpoint: unknown dtype ", static_cast<int>(t));
}

void check_name(const std::string& name, const char* what) {
  bool ok = !name.empty() && name.front() != '.' && name.back() != '.';
  for (size_t i = 0; ok && i < name.size(); ++i) {
    char c = name[i];
    bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    ok = word || (c == '.' && name[i + 1] != '.');
  }
  MT_CHECK(ok, "checkpoint: invalid ", what, " name '", name,
           "' (expected '.'-separated non-empty parts of letters, digits, '_' and '-')");
}

uint32_t fold_entry(uint32_t global, const char* group, const std::string& name, uint32_t crc) {
  std::string key = std::string(group) + "/" + name;
  global = checkpoint_crc32(key.c_str(), key.size() + 1, global);  // with the terminating NUL
  unsigned char le[4] = {static_cast<unsigned char>(crc), static_cast<unsigned char>(crc >> 8),
                         static_cast<unsigned char>(crc >> 16), static_cast<unsigned char>(crc >> 24)};
  return checkpoint_crc32(le, 4, global);
}

}  // namespace mt::ckpt
