// Checkpoint files (HDF5): CheckpointWriter writes tensors given as raw buffers plus metadata and
// commits atomically; CheckpointReader verifies a whole file before it hands anything out.
// The run-folder conventions (checkpoints/, latest, pruning) are in checkpoint_dir.h.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "mt/core/dtype.h"
#include "mt/io/checkpoint_hdf5.h"

namespace mt {

// Note [Checkpoint format]
// A checkpoint is one HDF5 file (format 1.8 objects: superblock v2 and object headers carry
// HDF5's own checksums, and the file stays readable by any HDF5 >= 1.8, h5py included).
//  - Root attributes: `format` = "moetrain-checkpoint", `format_version` = 1 (int64); written at
//    commit: `complete` = 1 (int64) and `checksum` (uint32, see below). A reader refuses a file
//    without `complete` or with a version it does not know.
//  - /tensors: one contiguous, uncompressed dataset per logical tensor, named by its dotted
//    parameter path verbatim ("blocks.3.moe.experts.w1"; '.'-separated non-empty segments of
//    [A-Za-z0-9_-]), kept in write order (link creation order is tracked). The dataspace is the
//    tensor's shape: scalar dataspace for a 0-d tensor, zero-sized dimensions for empty ones.
//    Element types, all little-endian: f32 -> IEEE_F32LE, f64 -> IEEE_F64LE, i32 -> STD_I32LE,
//    i64 -> STD_I64LE, bool -> STD_U8LE (0/1), bf16 and f16 -> STD_U16LE holding the raw bit
//    pattern (HDF5 and numpy have no bf16; numpy users: .view(np.float16) for f16). Every tensor
//    dataset has attributes `dtype` (our name: "f32", "bf16", ...: the authority for the element
//    type; the HDF5 type must be the one above) and `crc32` (uint32).
//  - /meta: one dataset per metadata key (same naming rule), in write order: int64 -> scalar
//    STD_I64LE; double -> scalar IEEE_F64LE; string -> scalar fixed-length UTF-8 string of
//    max(1, bytes) bytes, null-padded (so strings hold no NUL byte); uint64 array -> 1-d STD_U64LE.
//    Datasets, not attributes, so a long resolved recipe has no 64 KiB limit. Each has `crc32`.
//  - `crc32` is CRC-32 (zlib polynomial, = Python's zlib.crc32) of the dataset's raw stored bytes
//    in row-major order (a string: its max(1, bytes) stored bytes).
//  - Root `checksum` is CRC-32 over, for /tensors then /meta in creation order, each entry's
//    "<group>/<name>\0" followed by its crc32 as 4 little-endian bytes: it catches a dataset
//    added, removed, renamed or with its crc32 attribute edited. (Other writers, e.g. h5py for
//    golden test files: groups with track_order=True, or else the reader uses name order.)
//  - Commit: the writer writes `<final>.tmp`, adds `complete` + `checksum`, closes, fsyncs the
//    file, renames it to <final> and fsyncs the directory; an uncommitted writer deletes its temp
//    file, so <final> only ever holds a whole, committed checkpoint.
//  - Reading verifies everything before returning: HDF5 signature, that HDF5 can open it (HDF5
//    rejects a truncated file: its end-of-file address is recorded in the superblock), format,
//    version, completion marker, every dataset's crc32 and the root checksum. read() checks the
//    tensor's crc32 again on the bytes it returns. Verifying reads the whole file once, in
//    blocks of at most 64 MiB.
//  - Run folder (checkpoint_dir.h): <run_dir>/checkpoints/step_XXXXXXXX.h5 (step zero-padded to
//    8 digits), and <run_dir>/checkpoints/latest, one line naming the newest committed file,
//    replaced by temp file + fsync + rename only after that file's commit.
// One process writes a file; HDF5 (serial build) is not thread-safe: one thread at a time.

inline constexpr int64_t kCheckpointFormatVersion = 1;

struct TensorInfo {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // empty: a 0-d tensor
  int64_t numel() const;
};

// "[2, 3]"; "[]" for a 0-d tensor.
std::string format_shape(const std::vector<int64_t>& shape);

// Writes `final_path + ".tmp"`; commit() makes it `final_path`. Destroyed without commit() (an
// exception while saving), it removes the temp file and leaves `final_path` as it was.
class CheckpointWriter {
 public:
  explicit CheckpointWriter(std::filesystem::path final_path);
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // One tensor of shape `shape` (row-major, contiguous) at `data`: prod(shape) * dtype_size(dtype)
  // bytes. `data` may be null when the tensor is empty.
  void write(const std::string& name, DType dtype, const std::vector<int64_t>& shape, const void* data);

  void write_int(const std::string& key, int64_t value);
  void write_double(const std::string& key, double value);
  void write_string(const std::string& key, const std::string& value);
  void write_u64s(const std::string& key, const std::vector<uint64_t>& values);

  // Marker + checksum, close, fsync, rename to the final path, fsync the directory.
  void commit();

  const std::filesystem::path& path() const { return final_path_; }
  // The root checksum written by commit() (Note [Checkpoint format]); 0 before.
  uint32_t checksum() const { return checksum_; }

 private:
  struct Entry {
    std::string name;
    uint32_t crc;
  };
  H5Handle create_dataset(const H5Handle& group, const char* group_name, const std::string& name,
                          hid_t file_type, const H5Handle& space);
  void write_meta(const std::string& key, hid_t type, const H5Handle& space, const void* data,
                  size_t bytes);
  void check_open(const char* op) const;

  std::filesystem::path final_path_;
  std::filesystem::path tmp_path_;
  H5Handle file_;
  H5Handle tensors_;
  H5Handle meta_;
  std::vector<Entry> tensor_entries_;
  std::vector<Entry> meta_entries_;
  uint32_t checksum_ = 0;
  bool committed_ = false;
};

enum class MetaKind { kInt, kDouble, kString, kU64s };
const char* meta_kind_name(MetaKind kind);

// How much a reader verifies on open. kWhole: everything, every dataset's data included (Note
// [Checkpoint format]). kOnRead: the structure, attributes and root checksum but not the data, whose
// crc32 read() checks on the bytes it returns: for a reader that reads only some tensors (a part of a
// sharded checkpoint read by several ranks, each its rows) without reading the file twice.
enum class Verify { kWhole, kOnRead };

// Opens and verifies a checkpoint (see Note [Checkpoint format]); the constructor throws mt::Error
// naming the file (and the dataset, where one is at fault) if anything is wrong.
class CheckpointReader {
 public:
  explicit CheckpointReader(std::filesystem::path path, Verify verify = Verify::kWhole);

  const std::filesystem::path& path() const { return path_; }
  int64_t format_version() const { return format_version_; }
  // The root checksum (verified on open).
  uint32_t checksum() const { return checksum_; }

  // Tensor names in write order.
  const std::vector<std::string>& names() const { return names_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  // Reads tensor `name` into `out`; `dtype` and `shape` must be the stored ones.
  void read(const std::string& name, DType dtype, const std::vector<int64_t>& shape, void* out) const;

  // Metadata keys in write order; values were read and verified on open.
  const std::vector<std::string>& meta_keys() const { return meta_keys_; }
  bool has_meta(const std::string& key) const { return meta_.count(key) != 0; }
  MetaKind meta_kind(const std::string& key) const;
  int64_t read_int(const std::string& key) const;
  double read_double(const std::string& key) const;
  const std::string& read_string(const std::string& key) const;
  const std::vector<uint64_t>& read_u64s(const std::string& key) const;

 private:
  struct Tensor {
    TensorInfo info;
    uint32_t crc;
  };
  // Alternative index == MetaKind.
  using MetaValue = std::variant<int64_t, double, std::string, std::vector<uint64_t>>;
  void verify_root();
  void load_tensors(uint32_t& global_crc, Verify verify);
  void load_meta(uint32_t& global_crc);
  const MetaValue& meta_value(const std::string& key, MetaKind want) const;

  std::filesystem::path path_;
  H5Handle file_;
  H5Handle tensor_group_;
  int64_t format_version_ = 0;
  uint32_t checksum_ = 0;
  std::vector<std::string> names_;
  std::map<std::string, Tensor> tensors_;
  std::vector<std::string> meta_keys_;
  std::map<std::string, MetaValue> meta_;
};

}  // namespace mt
