// A checkpoint to read, whichever its form: one file (Note [Checkpoint format]) or a sharded folder
// (Note [Sharded checkpoints]). Tensors are named and shaped as logical, whole tensors; a reader asks
// for the rows it needs, so a sharded checkpoint loads on any rank count.
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mt/io/checkpoint.h"
#include "mt/io/sharded_checkpoint.h"

namespace mt {

// True when `path` is a sharded checkpoint folder (it holds index.h5).
bool is_sharded_checkpoint(const std::filesystem::path& path);

class CheckpointSource {
 public:
  // Opens and verifies `path`: a file (always verified whole), or a folder: its index verified whole,
  // every part present with the root checksum the index records, verified as `parts` says, every
  // piece in its part with the index's dtype and shape, and every tensor's pieces tiling its rows.
  // Errors name the folder and the part or tensor at fault.
  explicit CheckpointSource(std::filesystem::path path, Verify parts = Verify::kWhole);

  const std::filesystem::path& path() const { return path_; }
  bool sharded() const { return index_ != nullptr; }
  // The file's metadata, or the index's (`sharded.*` keys included).
  const CheckpointReader& meta() const { return sharded() ? *index_ : *parts_.at(0); }
  int64_t format_version() const { return meta().format_version(); }
  // Parts: 1 for a single file.
  int parts() const { return static_cast<int>(parts_.size()); }

  // Logical tensors in write order (a sharded folder: the order of first pieces in the index).
  const std::vector<std::string>& names() const { return names_; }
  bool has(const std::string& name) const { return infos_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  // Rows [row0, row0 + rows) (dimension 0) of tensor `name`, whose stored dtype and whole shape must be
  // `dtype` and `shape`, into `out` (row-major). A 0-d tensor: row0 0, rows 1.
  void read_rows(const std::string& name, DType dtype, const std::vector<int64_t>& shape, int64_t row0, int64_t rows,
                 void* out) const;
  void read(const std::string& name, DType dtype, const std::vector<int64_t>& shape, void* out) const {
    read_rows(name, dtype, shape, 0, shape.empty() ? 1 : shape[0], out);
  }

 private:
  std::filesystem::path path_;
  std::unique_ptr<CheckpointReader> index_;             // sharded only
  std::vector<std::unique_ptr<CheckpointReader>> parts_;  // the file, or the parts by rank
  std::vector<std::string> names_;
  std::map<std::string, TensorInfo> infos_;
  std::map<std::string, std::vector<IndexedPiece>> pieces_;  // by name, in row order
};

// Writes `source` as one checkpoint file `out` (the form a single-rank save writes: the same tensors,
// whole, and metadata, without the index's `sharded.*` keys), one tensor in memory at a time.
void consolidate_checkpoint(const CheckpointSource& source, const std::filesystem::path& out);

}  // namespace mt
