// CheckpointWriter: tensors and metadata into `<final>.tmp`, then an atomic, durable commit.
// See Note [Checkpoint format] in checkpoint.h.
#include <system_error>

#include "mt/io/checkpoint.h"
#include "mt/io/checkpoint_crc32.h"
#include "mt/io/checkpoint_format.h"
#include "mt/io/checkpoint_fs.h"

namespace mt {

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string format_shape(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

namespace {

// A group whose links remember creation order, so names come back in write order.
H5Handle create_ordered_group(hid_t file, const char* name, const std::string& where) {
  H5Handle gcpl(MT_H5_CHECK(H5Pcreate(H5P_GROUP_CREATE), where, ": cannot make a property list"), H5Pclose);
  MT_H5_CHECK(H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), where,
              ": cannot track creation order");
  return H5Handle(MT_H5_CHECK(H5Gcreate2(file, name, H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), where,
                              ": cannot create group /", name),
                  H5Gclose);
}

}  // namespace

CheckpointWriter::CheckpointWriter(std::filesystem::path final_path)
    : final_path_(std::move(final_path)), tmp_path_(final_path_.string() + ".tmp") {
  h5_silence_errors();
  std::filesystem::path dir = final_path_.parent_path();
  MT_CHECK(dir.empty() || std::filesystem::is_directory(dir), "checkpoint ", final_path_.string(),
           ": directory ", dir.string(), " does not exist");
  const std::string where = "checkpoint " + tmp_path_.string();
  H5Handle fapl(MT_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), where, ": cannot make a property list"), H5Pclose);
  MT_H5_CHECK(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_V18), where,
              ": cannot set the file format version");
  MT_H5_CHECK(H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG), where, ": cannot set the close degree");
  file_ = H5Handle(MT_H5_CHECK(H5Fcreate(tmp_path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), where,
                               ": cannot create the file"),
                   H5Fclose);
  try {
    h5_write_attr_string(file_.get(), ckpt::kFormatAttr, ckpt::kFormatName, where);
    h5_write_attr_int64(file_.get(), ckpt::kVersionAttr, kCheckpointFormatVersion, where);
    tensors_ = create_ordered_group(file_.get(), ckpt::kTensorGroup, where);
    meta_ = create_ordered_group(file_.get(), ckpt::kMetaGroup, where);
  } catch (...) {
    file_.reset();
    std::error_code ec;
    std::filesystem::remove(tmp_path_, ec);
    throw;
  }
}

CheckpointWriter::~CheckpointWriter() {
  if (committed_) return;
  meta_.reset();
  tensors_.reset();
  file_.reset();
  std::error_code ec;
  std::filesystem::remove(tmp_path_, ec);  // nothing to report from a destructor: best effort
}

void CheckpointWriter::check_open(const char* op) const {
  MT_CHECK(!committed_, "checkpoint ", final_path_.string(), ": ", op, " after commit()");
}

H5Handle CheckpointWriter::create_dataset(const H5Handle& group, const char* group_name, const std::string& name,
                                          hid_t file_type, const H5Handle& space) {
  const std::string where = "checkpoint " + tmp_path_.string() + ": " + group_name + " '" + name + "'";
  MT_CHECK(MT_H5_CHECK(H5Lexists(group.get(), name.c_str(), H5P_DEFAULT), where, ": cannot look up") == 0, where,
           " written twice");
  H5Handle dcpl(MT_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), where, ": cannot make a property list"), H5Pclose);
  MT_H5_CHECK(H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS), where, ": cannot set the layout");
  MT_H5_CHECK(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER), where, ": cannot set the fill time");
  return H5Handle(MT_H5_CHECK(H5Dcreate2(group.get(), name.c_str(), file_type, space.get(), H5P_DEFAULT, dcpl.get(),
                                         H5P_DEFAULT),
                              where, ": cannot create the dataset"),
                  H5Dclose);
}

void CheckpointWriter::write(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                             const void* data) {
  check_open("write");
  ckpt::check_name(name, "tensor");
  const std::string where = "checkpoint " + tmp_path_.string() + ": tensor '" + name + "'";
  std::vector<hsize_t> dims;
  int64_t numel = 1;
  for (int64_t d : shape) {
    MT_CHECK(d >= 0, where, ": expected non-negative dimensions, got shape ", format_shape(shape));
    dims.push_back(static_cast<hsize_t>(d));
    numel *= d;
  }
  const size_t bytes = static_cast<size_t>(numel) * dtype_size(dtype);
  MT_CHECK(data != nullptr || bytes == 0, where, ": null data for shape ", format_shape(shape));
  H5Handle space(MT_H5_CHECK(shape.empty() ? H5Screate(H5S_SCALAR)
                                           : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                             where, ": cannot make a dataspace for shape ", format_shape(shape)),
                 H5Sclose);
  H5Handle ds = create_dataset(tensors_, "tensor", name, ckpt::file_type(dtype), space);
  if (bytes > 0)
    MT_H5_CHECK(H5Dwrite(ds.get(), ckpt::mem_type(dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, data), where,
                ": cannot write the data");
  const uint32_t crc = checkpoint_crc32(data, bytes);
  h5_write_attr_string(ds.get(), ckpt::kDTypeAttr, dtype_name(dtype), where);
  h5_write_attr_u32(ds.get(), ckpt::kCrcAttr, crc, where);
  MT_H5_CHECK(ds.close(), where, ": cannot close the dataset");
  tensor_entries_.push_back({name, crc});
}

void CheckpointWriter::write_meta(const std::string& key, hid_t type, const H5Handle& space, const void* data,
                                  size_t bytes) {
  const std::string where = "checkpoint " + tmp_path_.string() + ": metadata '" + key + "'";
  H5Handle ds = create_dataset(meta_, "metadata", key, type, space);
  if (bytes > 0)
    MT_H5_CHECK(H5Dwrite(ds.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), where, ": cannot write the value");
  const uint32_t crc = checkpoint_crc32(data, bytes);
  h5_write_attr_u32(ds.get(), ckpt::kCrcAttr, crc, where);
  MT_H5_CHECK(ds.close(), where, ": cannot close the dataset");
  meta_entries_.push_back({key, crc});
}

void CheckpointWriter::write_int(const std::string& key, int64_t value) {
  check_open("write_int");
  ckpt::check_name(key, "metadata key");
  H5Handle space(MT_H5_CHECK(H5Screate(H5S_SCALAR), "checkpoint: cannot make a dataspace"), H5Sclose);
  write_meta(key, H5T_STD_I64LE, space, &value, sizeof value);
}

void CheckpointWriter::write_double(const std::string& key, double value) {
  check_open("write_double");
  ckpt::check_name(key, "metadata key");
  H5Handle space(MT_H5_CHECK(H5Screate(H5S_SCALAR), "checkpoint: cannot make a dataspace"), H5Sclose);
  write_meta(key, H5T_IEEE_F64LE, space, &value, sizeof value);
}

void CheckpointWriter::write_string(const std::string& key, const std::string& value) {
  check_open("write_string");
  ckpt::check_name(key, "metadata key");
  const std::string where = "checkpoint " + tmp_path_.string() + ": metadata '" + key + "'";
  MT_CHECK(value.find('\0') == std::string::npos, where, ": strings must not contain a NUL byte");
  H5Handle type = h5_string_type(value.size(), where);
  H5Handle space(MT_H5_CHECK(H5Screate(H5S_SCALAR), where, ": cannot make a dataspace"), H5Sclose);
  const std::string stored = value.empty() ? std::string(1, '\0') : value;  // Note [Checkpoint format]
  write_meta(key, type.get(), space, stored.data(), stored.size());
}

void CheckpointWriter::write_u64s(const std::string& key, const std::vector<uint64_t>& values) {
  check_open("write_u64s");
  ckpt::check_name(key, "metadata key");
  const hsize_t n = values.size();
  H5Handle space(MT_H5_CHECK(H5Screate_simple(1, &n, nullptr), "checkpoint: cannot make a dataspace"), H5Sclose);
  write_meta(key, H5T_STD_U64LE, space, values.data(), values.size() * sizeof(uint64_t));
}

void CheckpointWriter::commit() {
  check_open("commit");
  const std::string where = "checkpoint " + tmp_path_.string();
  uint32_t global = 0;
  for (const Entry& e : tensor_entries_) global = ckpt::fold_entry(global, ckpt::kTensorGroup, e.name, e.crc);
  for (const Entry& e : meta_entries_) global = ckpt::fold_entry(global, ckpt::kMetaGroup, e.name, e.crc);
  MT_H5_CHECK(meta_.close(), where, ": cannot close group /", ckpt::kMetaGroup);
  MT_H5_CHECK(tensors_.close(), where, ": cannot close group /", ckpt::kTensorGroup);
  h5_write_attr_u32(file_.get(), ckpt::kChecksumAttr, global, where);
  h5_write_attr_int64(file_.get(), ckpt::kCompleteAttr, 1, where);
  MT_H5_CHECK(file_.close(), where, ": cannot close the file");
  durable_rename(tmp_path_, final_path_);
  checksum_ = global;
  committed_ = true;
}

}  // namespace mt
