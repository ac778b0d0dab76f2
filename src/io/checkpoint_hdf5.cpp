// HDF5 error handling for the checkpoint code: silence the automatic printing, read the error stack
// into our exception messages.
#include "mt/io/checkpoint_hdf5.h"

#include <vector>

namespace mt {

// Note [No HDF5 clean-up at exit]
// A file whose close failed (a full disk: H5Fclose cannot flush) stays half-closed in HDF5's ID
// table, and HDF5's atexit clean-up then walks it and crashes (SIGSEGV after our clean error).
// Every file we open is closed by its H5Handle before exit, so HDF5's clean-up has nothing to do:
// it is switched off here, before any other HDF5 call (static initialisation of this file, which
// every checkpoint reader and writer links). An abandoned half-closed file is then only memory.
namespace {
const bool kHdf5AtexitOff = [] {
  H5dont_atexit();
  return true;
}();
}  // namespace

void h5_silence_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

namespace {

herr_t collect_message(unsigned /*n*/, const H5E_error2_t* err, void* client) {
  auto* msgs = static_cast<std::vector<std::string>*>(client);
  if (err->desc && *err->desc) msgs->emplace_back(err->desc);
  return 0;
}

}  // namespace

std::string h5_error_message() {
  std::vector<std::string> msgs;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_message, &msgs);
  H5Eclear2(H5E_DEFAULT);
  if (msgs.empty()) return "HDF5 call failed";
  // Downward walk: the API function first, the innermost (most specific) cause last. A failed
  // system call reads "file write failed: time = ..., errno = 28, error message = 'No space left
  // on device', ...": keep its first words and the OS message.
  std::string out = msgs.back();
  const std::string os_key = "error message = '";
  if (size_t at = out.find(os_key); at != std::string::npos) {
    size_t end = out.find('\'', at + os_key.size());
    std::string os_msg = out.substr(at + os_key.size(), end == std::string::npos ? std::string::npos : end - at - os_key.size());
    out = out.substr(0, out.find(':')) + ": " + os_msg;
  }
  if (msgs.size() >= 2 && msgs[msgs.size() - 2] != out) out = msgs[msgs.size() - 2] + ": " + out;
  return out;
}

[[noreturn]] void h5_fail(const char* file, int line, const std::string& context) {
  throw_error(file, line, context + ": " + h5_error_message());
}

bool h5_has_attr(hid_t obj, const char* attr, const std::string& where) {
  return MT_H5_CHECK(H5Aexists(obj, attr), where, ": cannot look up attribute '", attr, "'") > 0;
}

H5Handle h5_string_type(size_t bytes, const std::string& where) {
  H5Handle type(MT_H5_CHECK(H5Tcopy(H5T_C_S1), where, ": cannot make a string type"), H5Tclose);
  MT_H5_CHECK(H5Tset_size(type.get(), bytes == 0 ? 1 : bytes), where, ": cannot size a string type");
  MT_H5_CHECK(H5Tset_strpad(type.get(), H5T_STR_NULLPAD), where, ": cannot set string padding");
  MT_H5_CHECK(H5Tset_cset(type.get(), H5T_CSET_UTF8), where, ": cannot set string encoding");
  return type;
}

namespace {

void write_attr(hid_t obj, const char* attr, hid_t file_type, hid_t mem_type, const void* value,
                const std::string& where) {
  H5Handle space(MT_H5_CHECK(H5Screate(H5S_SCALAR), where, ": cannot make a dataspace"), H5Sclose);
  H5Handle a(MT_H5_CHECK(H5Acreate2(obj, attr, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT), where,
                         ": cannot create attribute '", attr, "'"),
             H5Aclose);
  MT_H5_CHECK(H5Awrite(a.get(), mem_type, value), where, ": cannot write attribute '", attr, "'");
  MT_H5_CHECK(a.close(), where, ": cannot close attribute '", attr, "'");
}

// Opens a scalar attribute whose type class is `cls` and size `size` (0: any size); returns it and its type.
std::pair<H5Handle, H5Handle> open_attr(hid_t obj, const char* attr, H5T_class_t cls, size_t size,
                                        const std::string& where) {
  MT_CHECK(h5_has_attr(obj, attr, where), where, ": attribute '", attr, "' is missing");
  H5Handle a(MT_H5_CHECK(H5Aopen(obj, attr, H5P_DEFAULT), where, ": cannot open attribute '", attr, "'"),
             H5Aclose);
  H5Handle type(MT_H5_CHECK(H5Aget_type(a.get()), where, ": cannot read the type of attribute '", attr, "'"),
                H5Tclose);
  H5Handle space(MT_H5_CHECK(H5Aget_space(a.get()), where, ": cannot read the shape of attribute '", attr, "'"),
                 H5Sclose);
  H5S_class_t space_cls = H5Sget_simple_extent_type(space.get());
  bool ok = H5Tget_class(type.get()) == cls && (size == 0 || H5Tget_size(type.get()) == size) &&
            space_cls == H5S_SCALAR;
  MT_CHECK(ok, where, ": attribute '", attr, "' has an unexpected type or shape");
  return {std::move(a), std::move(type)};
}

}  // namespace

void h5_write_attr_string(hid_t obj, const char* attr, const std::string& value, const std::string& where) {
  MT_CHECK(value.find('\0') == std::string::npos, where, ": attribute '", attr, "' must not contain a NUL byte");
  H5Handle type = h5_string_type(value.size(), where);
  const char nul = '\0';
  write_attr(obj, attr, type.get(), type.get(), value.empty() ? &nul : value.data(), where);
}

void h5_write_attr_int64(hid_t obj, const char* attr, int64_t value, const std::string& where) {
  write_attr(obj, attr, H5T_STD_I64LE, H5T_NATIVE_INT64, &value, where);
}

void h5_write_attr_u32(hid_t obj, const char* attr, uint32_t value, const std::string& where) {
  write_attr(obj, attr, H5T_STD_U32LE, H5T_NATIVE_UINT32, &value, where);
}

std::string h5_read_attr_string(hid_t obj, const char* attr, const std::string& where) {
  auto [a, type] = open_attr(obj, attr, H5T_STRING, 0, where);
  MT_CHECK(H5Tis_variable_str(type.get()) == 0, where, ": attribute '", attr, "' is not a fixed-length string");
  std::string value(H5Tget_size(type.get()), '\0');
  MT_H5_CHECK(H5Aread(a.get(), type.get(), value.data()), where, ": cannot read attribute '", attr, "'");
  value.erase(value.find_last_not_of('\0') + 1);
  return value;
}

int64_t h5_read_attr_int64(hid_t obj, const char* attr, const std::string& where) {
  auto [a, type] = open_attr(obj, attr, H5T_INTEGER, 8, where);
  int64_t value = 0;
  MT_H5_CHECK(H5Aread(a.get(), H5T_NATIVE_INT64, &value), where, ": cannot read attribute '", attr, "'");
  return value;
}

uint32_t h5_read_attr_u32(hid_t obj, const char* attr, const std::string& where) {
  auto [a, type] = open_attr(obj, attr, H5T_INTEGER, 4, where);
  uint32_t value = 0;
  MT_H5_CHECK(H5Aread(a.get(), H5T_NATIVE_UINT32, &value), where, ": cannot read attribute '", attr, "'");
  return value;
}

}  // namespace mt
