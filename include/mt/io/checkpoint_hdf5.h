// The HDF5 C API as the checkpoint code uses it: an owning handle per hid_t, and status checks that
// turn a failure into mt::Error carrying our context plus HDF5's own innermost message.
// HDF5's automatic error printing is switched off; the error stack is read and cleared instead.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>

#include "mt/core/error.h"

namespace mt {

// Owns one HDF5 identifier (file, group, dataset, dataspace, datatype, attribute, property list).
class H5Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Handle() = default;
  H5Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  H5Handle(H5Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), close_(o.close_) {}
  H5Handle& operator=(H5Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      close_ = o.close_;
    }
    return *this;
  }
  ~H5Handle() { reset(); }

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now, ignoring the status (for unwinding).
  void reset() {
    if (id_ >= 0) close_(std::exchange(id_, H5I_INVALID_HID));
  }
  // Closes now and returns HDF5's status (negative on failure), for closes that must be checked.
  herr_t close() { return id_ >= 0 ? close_(std::exchange(id_, H5I_INVALID_HID)) : 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

// Switches off HDF5's printing of its error stack for the calling thread.
void h5_silence_errors();

// HDF5's innermost error message(s) for the last failed call on this thread; clears the stack.
std::string h5_error_message();

[[noreturn]] void h5_fail(const char* file, int line, const std::string& context);

// Attribute helpers. `where` prefixes error messages ("checkpoint a.h5: tensor 'w'").
bool h5_has_attr(hid_t obj, const char* attr, const std::string& where);
void h5_write_attr_string(hid_t obj, const char* attr, const std::string& value, const std::string& where);
void h5_write_attr_int64(hid_t obj, const char* attr, int64_t value, const std::string& where);
void h5_write_attr_u32(hid_t obj, const char* attr, uint32_t value, const std::string& where);
// Readers check that the attribute exists, is scalar and has the expected type class.
std::string h5_read_attr_string(hid_t obj, const char* attr, const std::string& where);
int64_t h5_read_attr_int64(hid_t obj, const char* attr, const std::string& where);
uint32_t h5_read_attr_u32(hid_t obj, const char* attr, const std::string& where);

// A fixed-length, null-padded UTF-8 string type of max(1, bytes) bytes (HDF5 refuses size 0).
H5Handle h5_string_type(size_t bytes, const std::string& where);

}  // namespace mt

// Evaluates an HDF5 call; a negative result throws mt::Error "<context>: <HDF5's message>".
// The context arguments are only formatted on failure.
#define MT_H5_CHECK(expr, ...)                                                    \
  ([&]() {                                                                        \
    auto mt_h5_result_ = (expr);                                                  \
    if (mt_h5_result_ < 0) ::mt::h5_fail(__FILE__, __LINE__, ::mt::str_cat(__VA_ARGS__)); \
    return mt_h5_result_;                                                         \
  }())
