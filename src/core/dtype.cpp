// DType names and sizes, and the IEEE half conversion for the host.
#include "mt/core/dtype.h"

namespace mt {

size_t dtype_size(DType t) {
  switch (t) {
#define MT_SIZE(e, ty, n) case DType::e: return sizeof(ty);
    MT_FORALL_DTYPES(MT_SIZE)
#undef MT_SIZE
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
#define MT_NAME(e, ty, n) case DType::e: return n;
    MT_FORALL_DTYPES(MT_NAME)
#undef MT_NAME
  }
  return "?";
}

DType dtype_from_name(const std::string& name) {
#define MT_FROM(e, ty, n) if (name == n) return DType::e;
  MT_FORALL_DTYPES(MT_FROM)
#undef MT_FROM
  if (name == "float32") return DType::kF32;
  if (name == "bfloat16") return DType::kBF16;
  if (name == "float16") return DType::kF16;
  MT_FAIL("unknown dtype '", name, "' (valid: f32, f64, bf16, f16, i32, i64, bool)");
}

f16::f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7fffffffu;
  if (absx > 0x7f800000u) { bits = static_cast<uint16_t>(sign | 0x7e00u); return; }  // NaN
  if (absx >= 0x477ff000u) { bits = static_cast<uint16_t>(sign | 0x7c00u); return; }  // overflow -> inf
  if (absx < 0x38800000u) {  // subnormal or zero in half
    if (absx < 0x33000000u) { bits = static_cast<uint16_t>(sign); return; }
    uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
    int shift = 126 - static_cast<int>(absx >> 23);  // half subnormal = mant * 2^-24
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u))) ++half;
    bits = static_cast<uint16_t>(sign | half);
    return;
  }
  uint32_t h = ((absx >> 13) - (112u << 10));
  uint32_t rem = absx & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  bits = static_cast<uint16_t>(sign | h);
}

f16::operator float() const {
  uint32_t sign = (static_cast<uint32_t>(bits) & 0x8000u) << 16;
  uint32_t exp = (bits >> 10) & 0x1fu;
  uint32_t mant = bits & 0x3ffu;
  uint32_t out;
  if (exp == 0) {
    if (mant == 0) {
      out = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do { mant <<= 1; ++e; } while (!(mant & 0x400u));
      out = sign | ((112u - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    out = sign | 0x7f800000u | (mant << 13);
  } else {
    out = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &out, 4);
  return f;
}

}  // namespace mt
