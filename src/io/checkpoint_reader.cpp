// CheckpointReader: verifies a whole checkpoint on open (signature, format, completion marker, every
// dataset's CRC-32, the root checksum), then serves tensors and metadata. See Note [Checkpoint format].
#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>

#include "mt/io/checkpoint.h"
#include "mt/io/checkpoint_crc32.h"
#include "mt/io/checkpoint_format.h"

namespace mt {
namespace {

// Bound on the buffer used to checksum a dataset on open, so verifying needs little memory.
constexpr size_t kVerifyBlockBytes = size_t{64} << 20;

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// Link names in creation order, or in name order for a group (written by another tool) that does
// not track creation order.
std::vector<std::string> ordered_names(hid_t group, const std::string& where) {
  H5G_info_t info;
  MT_H5_CHECK(H5Gget_info(group, &info), where, ": cannot list the group");
  H5Handle gcpl(MT_H5_CHECK(H5Gget_create_plist(group), where, ": cannot read the group's properties"), H5Pclose);
  unsigned order_flags = 0;
  MT_H5_CHECK(H5Pget_link_creation_order(gcpl.get(), &order_flags), where, ": cannot read the link order");
  const H5_index_t index = (order_flags & H5P_CRT_ORDER_TRACKED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t n = MT_H5_CHECK(
        H5Lget_name_by_idx(group, ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT), where,
        ": cannot read link ", i);
    std::string name(static_cast<size_t>(n), '\0');
    MT_H5_CHECK(H5Lget_name_by_idx(group, ".", index, H5_ITER_INC, i, name.data(), name.size() + 1,
                                   H5P_DEFAULT),
                where, ": cannot read link ", i);
    names.push_back(std::move(name));
  }
  return names;
}

// The dataset's shape: {} for a scalar dataspace.
std::vector<int64_t> dataset_shape(hid_t ds, const std::string& where) {
  H5Handle space(MT_H5_CHECK(H5Dget_space(ds), where, ": cannot read the dataspace"), H5Sclose);
  H5S_class_t cls = H5Sget_simple_extent_type(space.get());
  if (cls == H5S_SCALAR) return {};
  MT_CHECK(cls == H5S_SIMPLE, where, ": has no dataspace extent (expected a scalar or an array)");
  int rank = MT_H5_CHECK(H5Sget_simple_extent_ndims(space.get()), where, ": cannot read the rank");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  MT_H5_CHECK(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), where, ": cannot read the dimensions");
  return std::vector<int64_t>(dims.begin(), dims.end());
}

// CRC-32 of a dataset's bytes, read as `mem_type` in blocks of whole rows (dimension 0).
uint32_t dataset_crc(hid_t ds, hid_t mem_type, const std::vector<int64_t>& shape, size_t elem_bytes,
                     const std::string& where) {
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  if (numel == 0) return checkpoint_crc32(nullptr, 0);
  if (shape.empty()) {
    std::vector<unsigned char> buf(elem_bytes);
    MT_H5_CHECK(H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), where, ": cannot read the data");
    return checkpoint_crc32(buf.data(), buf.size());
  }
  const size_t row_bytes = static_cast<size_t>(numel / shape[0]) * elem_bytes;
  const int64_t rows_per_block = std::max<int64_t>(1, static_cast<int64_t>(kVerifyBlockBytes / row_bytes));
  std::vector<unsigned char> buf(static_cast<size_t>(std::min(rows_per_block, shape[0])) * row_bytes);
  H5Handle fspace(MT_H5_CHECK(H5Dget_space(ds), where, ": cannot read the dataspace"), H5Sclose);
  std::vector<hsize_t> start(shape.size(), 0), count(shape.begin(), shape.end());
  uint32_t crc = 0;
  for (int64_t r0 = 0; r0 < shape[0]; r0 += rows_per_block) {
    start[0] = static_cast<hsize_t>(r0);
    count[0] = static_cast<hsize_t>(std::min(rows_per_block, shape[0] - r0));
    MT_H5_CHECK(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
                where, ": cannot select rows ", r0, "..");
    H5Handle mspace(MT_H5_CHECK(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), where,
                                ": cannot make a dataspace"),
                    H5Sclose);
    MT_H5_CHECK(H5Dread(ds, mem_type, mspace.get(), fspace.get(), H5P_DEFAULT, buf.data()), where,
                ": cannot read rows ", r0, "..");
    crc = checkpoint_crc32(buf.data(), count[0] * row_bytes, crc);
  }
  return crc;
}

void check_crc(uint32_t computed, hid_t ds, const std::string& where) {
  uint32_t stored = h5_read_attr_u32(ds, ckpt::kCrcAttr, where);
  MT_CHECK(computed == stored, where, " is damaged: its data has CRC-32 ", hex32(computed),
           ", the checksum stored when it was written is ", hex32(stored));
}

bool type_is(hid_t type, hid_t expected) { return H5Tequal(type, expected) > 0; }

}  // namespace

const char* meta_kind_name(MetaKind kind) {
  switch (kind) {
    case MetaKind::kInt: return "int64";
    case MetaKind::kDouble: return "double";
    case MetaKind::kString: return "string";
    case MetaKind::kU64s: return "uint64 array";
  }
  return "?";
}

CheckpointReader::CheckpointReader(std::filesystem::path path, Verify verify) : path_(std::move(path)) {
  h5_silence_errors();
  const std::string where = "checkpoint " + path_.string();
  std::error_code ec;
  MT_CHECK(std::filesystem::exists(path_, ec), where, " does not exist");
  MT_CHECK(std::filesystem::is_regular_file(path_, ec), where, " is not a regular file");
  {
    static constexpr std::array<char, 8> kSignature = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
    std::array<char, 8> head{};
    std::ifstream in(path_, std::ios::binary);
    MT_CHECK(in.good(), where, ": cannot open it for reading");
    in.read(head.data(), head.size());
    MT_CHECK(in.gcount() == 8 && head == kSignature, where, " is not an HDF5 file (",
             std::filesystem::file_size(path_, ec), " bytes, no HDF5 signature)");
  }
  file_ = H5Handle(MT_H5_CHECK(H5Fopen(path_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), where,
                               ": HDF5 cannot open it (truncated or damaged)"),
                   H5Fclose);
  verify_root();
  uint32_t global = 0;
  load_tensors(global, verify);
  load_meta(global);
  uint32_t stored = h5_read_attr_u32(file_.get(), ckpt::kChecksumAttr, where);
  checksum_ = stored;
  MT_CHECK(global == stored, where, " is damaged: its list of datasets and their checksums has CRC-32 ",
           hex32(global), ", the stored root checksum is ", hex32(stored),
           " (a dataset was added, removed or renamed, or a crc32 attribute edited)");
}

void CheckpointReader::verify_root() {
  const std::string where = "checkpoint " + path_.string();
  hid_t root = file_.get();
  MT_CHECK(h5_has_attr(root, ckpt::kFormatAttr, where), where, " is not a moetrain checkpoint (no '",
           ckpt::kFormatAttr, "' attribute)");
  std::string format = h5_read_attr_string(root, ckpt::kFormatAttr, where);
  MT_CHECK(format == ckpt::kFormatName, where, " is not a moetrain checkpoint (format '", format, "', expected '",
           ckpt::kFormatName, "')");
  format_version_ = h5_read_attr_int64(root, ckpt::kVersionAttr, where);
  MT_CHECK(format_version_ == kCheckpointFormatVersion, where, " has format version ", format_version_,
           "; this build reads version ", kCheckpointFormatVersion);
  MT_CHECK(h5_has_attr(root, ckpt::kCompleteAttr, where), where,
           " is incomplete: it has no completion marker (its writer never committed it)");
  int64_t complete = h5_read_attr_int64(root, ckpt::kCompleteAttr, where);
  MT_CHECK(complete == 1, where, ": completion marker is ", complete, ", expected 1");
}

void CheckpointReader::load_tensors(uint32_t& global, Verify verify) {
  const std::string file_where = "checkpoint " + path_.string();
  tensor_group_ = H5Handle(MT_H5_CHECK(H5Gopen2(file_.get(), ckpt::kTensorGroup, H5P_DEFAULT), file_where,
                                       ": cannot open group /", ckpt::kTensorGroup),
                           H5Gclose);
  names_ = ordered_names(tensor_group_.get(), file_where + ": group /" + ckpt::kTensorGroup);
  for (const std::string& name : names_) {
    const std::string where = file_where + ": tensor '" + name + "'";
    H5Handle ds(MT_H5_CHECK(H5Dopen2(tensor_group_.get(), name.c_str(), H5P_DEFAULT), where, ": cannot open it"),
                H5Dclose);
    const std::string dname = h5_read_attr_string(ds.get(), ckpt::kDTypeAttr, where);
    Tensor t;
    try {
      t.info.dtype = dtype_from_name(dname);
    } catch (const Error& e) {
      MT_FAIL(where, ": ", e.what());
    }
    H5Handle type(MT_H5_CHECK(H5Dget_type(ds.get()), where, ": cannot read its type"), H5Tclose);
    MT_CHECK(type_is(type.get(), ckpt::file_type(t.info.dtype)), where, ": its HDF5 element type does not match its ",
             ckpt::kDTypeAttr, " attribute '", dname, "'");
    t.info.shape = dataset_shape(ds.get(), where);
    for (int64_t d : t.info.shape) MT_CHECK(d >= 0, where, ": bad shape ", format_shape(t.info.shape));
    if (verify == Verify::kWhole) {
      t.crc = dataset_crc(ds.get(), ckpt::mem_type(t.info.dtype), t.info.shape, dtype_size(t.info.dtype), where);
      check_crc(t.crc, ds.get(), where);
    } else {
      t.crc = h5_read_attr_u32(ds.get(), ckpt::kCrcAttr, where);
    }
    global = ckpt::fold_entry(global, ckpt::kTensorGroup, name, t.crc);
    tensors_.emplace(name, std::move(t));
  }
}

void CheckpointReader::load_meta(uint32_t& global) {
  const std::string file_where = "checkpoint " + path_.string();
  H5Handle group(MT_H5_CHECK(H5Gopen2(file_.get(), ckpt::kMetaGroup, H5P_DEFAULT), file_where,
                             ": cannot open group /", ckpt::kMetaGroup),
                 H5Gclose);
  meta_keys_ = ordered_names(group.get(), file_where + ": group /" + ckpt::kMetaGroup);
  for (const std::string& key : meta_keys_) {
    const std::string where = file_where + ": metadata '" + key + "'";
    H5Handle ds(MT_H5_CHECK(H5Dopen2(group.get(), key.c_str(), H5P_DEFAULT), where, ": cannot open it"), H5Dclose);
    H5Handle type(MT_H5_CHECK(H5Dget_type(ds.get()), where, ": cannot read its type"), H5Tclose);
    const std::vector<int64_t> shape = dataset_shape(ds.get(), where);
    MetaValue value;
    uint32_t crc = 0;
    auto read_into = [&](hid_t mem, void* out, size_t bytes) {
      if (bytes > 0)
        MT_H5_CHECK(H5Dread(ds.get(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, out), where, ": cannot read the value");
      crc = checkpoint_crc32(out, bytes);
    };
    if (shape.empty() && type_is(type.get(), H5T_STD_I64LE)) {
      int64_t v = 0;
      read_into(H5T_NATIVE_INT64, &v, sizeof v);
      value = v;
    } else if (shape.empty() && type_is(type.get(), H5T_IEEE_F64LE)) {
      double v = 0;
      read_into(H5T_NATIVE_DOUBLE, &v, sizeof v);
      value = v;
    } else if (shape.empty() && H5Tget_class(type.get()) == H5T_STRING && H5Tis_variable_str(type.get()) == 0) {
      std::string v(H5Tget_size(type.get()), '\0');
      read_into(type.get(), v.data(), v.size());
      v.erase(v.find_last_not_of('\0') + 1);
      value = std::move(v);
    } else if (shape.size() == 1 && type_is(type.get(), H5T_STD_U64LE)) {
      std::vector<uint64_t> v(static_cast<size_t>(shape[0]));
      read_into(H5T_NATIVE_UINT64, v.data(), v.size() * sizeof(uint64_t));
      value = std::move(v);
    } else {
      MT_FAIL(where, ": unsupported type or shape ", format_shape(shape),
              " (expected a scalar int64, double or string, or a 1-d uint64 array)");
    }
    check_crc(crc, ds.get(), where);
    global = ckpt::fold_entry(global, ckpt::kMetaGroup, key, crc);
    meta_.emplace(key, std::move(value));
  }
}

const TensorInfo& CheckpointReader::info(const std::string& name) const {
  auto it = tensors_.find(name);
  MT_CHECK(it != tensors_.end(), "checkpoint ", path_.string(), " has no tensor '", name, "' (it has ",
           tensors_.size(), " tensors)");
  return it->second.info;
}

void CheckpointReader::read(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                            void* out) const {
  const TensorInfo& stored = info(name);
  const std::string where = "checkpoint " + path_.string() + ": tensor '" + name + "'";
  MT_CHECK(stored.dtype == dtype, where, " is ", stored.dtype, ", expected ", dtype);
  MT_CHECK(stored.shape == shape, where, " has shape ", format_shape(stored.shape), ", expected ",
           format_shape(shape));
  const size_t bytes = static_cast<size_t>(stored.numel()) * dtype_size(dtype);
  H5Handle ds(MT_H5_CHECK(H5Dopen2(tensor_group_.get(), name.c_str(), H5P_DEFAULT), where, ": cannot open it"),
              H5Dclose);
  if (bytes > 0)
    MT_H5_CHECK(H5Dread(ds.get(), ckpt::mem_type(dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, out), where,
                ": cannot read the data");
  const uint32_t crc = checkpoint_crc32(out, bytes);
  MT_CHECK(crc == tensors_.at(name).crc, where, " is damaged or changed since it was opened: its data has CRC-32 ",
           hex32(crc), ", expected ", hex32(tensors_.at(name).crc));
}

const CheckpointReader::MetaValue& CheckpointReader::meta_value(const std::string& key, MetaKind want) const {
  auto it = meta_.find(key);
  MT_CHECK(it != meta_.end(), "checkpoint ", path_.string(), " has no metadata '", key, "'");
  MetaKind kind = static_cast<MetaKind>(it->second.index());
  MT_CHECK(kind == want, "checkpoint ", path_.string(), ": metadata '", key, "' has kind ", meta_kind_name(kind),
           ", expected ", meta_kind_name(want));
  return it->second;
}

MetaKind CheckpointReader::meta_kind(const std::string& key) const {
  auto it = meta_.find(key);
  MT_CHECK(it != meta_.end(), "checkpoint ", path_.string(), " has no metadata '", key, "'");
  return static_cast<MetaKind>(it->second.index());
}

int64_t CheckpointReader::read_int(const std::string& key) const {
  return std::get<int64_t>(meta_value(key, MetaKind::kInt));
}

double CheckpointReader::read_double(const std::string& key) const {
  return std::get<double>(meta_value(key, MetaKind::kDouble));
}

const std::string& CheckpointReader::read_string(const std::string& key) const {
  return std::get<std::string>(meta_value(key, MetaKind::kString));
}

const std::vector<uint64_t>& CheckpointReader::read_u64s(const std::string& key) const {
  return std::get<std::vector<uint64_t>>(meta_value(key, MetaKind::kU64s));
}

}  // namespace mt
