// DType: the element types of tensors, from one X-macro list, plus the half types' host structs.
// bf16/f16 are stored as raw 16-bit patterns; CPU code computes in float and rounds to nearest-even.
#pragma once
#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>

#include "mt/core/error.h"

namespace mt {

struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  explicit bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) { bits = 0x7fc0; return; }  // NaN
    u += 0x7fffu + ((u >> 16) & 1u);                                  // round to nearest even
    bits = static_cast<uint16_t>(u >> 16);
  }
  operator float() const {
    uint32_t u = static_cast<uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};

struct f16 {
  uint16_t bits = 0;
  f16() = default;
  explicit f16(float f);
  operator float() const;
};

// X(enum name, C++ type, printable name)
#define MT_FORALL_DTYPES(X) \
  X(kF32, float, "f32")       \
  X(kF64, double, "f64")      \
  X(kBF16, ::mt::bf16, "bf16") \
  X(kF16, ::mt::f16, "f16")   \
  X(kI32, int32_t, "i32")     \
  X(kI64, int64_t, "i64")     \
  X(kBool, bool, "bool")

enum class DType : uint8_t {
#define MT_DTYPE_ENUM(e, t, n) e,
  MT_FORALL_DTYPES(MT_DTYPE_ENUM)
#undef MT_DTYPE_ENUM
};

size_t dtype_size(DType t);
const char* dtype_name(DType t);
DType dtype_from_name(const std::string& name);  // throws naming the valid ones
inline bool is_floating(DType t) { return t == DType::kF32 || t == DType::kF64 || t == DType::kBF16 || t == DType::kF16; }
inline bool is_half(DType t) { return t == DType::kBF16 || t == DType::kF16; }
inline std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

template <typename T> struct dtype_of;
#define MT_DTYPE_OF(e, t, n) template <> struct dtype_of<t> { static constexpr DType value = DType::e; };
MT_FORALL_DTYPES(MT_DTYPE_OF)
#undef MT_DTYPE_OF

// Accumulation type: float for the half types, the type itself otherwise.
template <typename T> struct acc_type { using type = T; };
template <> struct acc_type<bf16> { using type = float; };
template <> struct acc_type<f16> { using type = float; };
template <typename T> using acc_t = typename acc_type<T>::type;

// Calls fn.template operator()<T>() with the C++ type of `t`:
//   dispatch_dtype(t, [&]<typename T>() { ... });
template <typename Fn>
decltype(auto) dispatch_dtype(DType t, Fn&& fn) {
  switch (t) {
#define MT_DTYPE_CASE(e, ty, n) case DType::e: return fn.template operator()<ty>();
    MT_FORALL_DTYPES(MT_DTYPE_CASE)
#undef MT_DTYPE_CASE
  }
  MT_FAIL("unknown dtype");
}

// Only floating types (f32, f64, bf16, f16); other dtypes are an error naming `op`.
template <typename Fn>
decltype(auto) dispatch_floating(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::kF32: return fn.template operator()<float>();
    case DType::kF64: return fn.template operator()<double>();
    case DType::kBF16: return fn.template operator()<bf16>();
    case DType::kF16: return fn.template operator()<f16>();
    default: MT_FAIL(op, ": expected a floating dtype (f32, f64, bf16, f16), got ", dtype_name(t));
  }
}

}  // namespace mt
