// CheckpointSource: one checkpoint file or a sharded folder verified on open, tensors read by rows
// (Note [Sharded checkpoints] in sharded_checkpoint.h).
#include "mt/io/checkpoint_source.h"

#include <algorithm>
#include <cstring>

#include "mt/core/error.h"

namespace mt {
namespace fs = std::filesystem;

bool is_sharded_checkpoint(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::exists(path / kShardedIndexFile, ec);
}

namespace {

int64_t row_elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (size_t d = 1; d < shape.size(); ++d) n *= shape[d];
  return n;
}

}  // namespace

CheckpointSource::CheckpointSource(fs::path path, Verify parts) : path_(std::move(path)) {
  const std::string where = "checkpoint " + path_.string();
  std::error_code ec;
  MT_CHECK(fs::exists(path_, ec), where, " does not exist");
  if (!fs::is_directory(path_, ec)) {
    parts_.push_back(std::make_unique<CheckpointReader>(path_));
    names_ = parts_[0]->names();
    for (const std::string& n : names_) {
      const TensorInfo& info = parts_[0]->info(n);
      infos_[n] = info;
      pieces_[n] = {{n, info.dtype, info.shape, 0, 0, info.shape.empty() ? 1 : info.shape[0]}};
    }
    return;
  }
  MT_CHECK(fs::exists(path_ / kShardedIndexFile, ec), where, " is a folder without ", kShardedIndexFile,
           ": not a committed sharded checkpoint (a write that did not finish leaves such a folder)");
  index_ = std::make_unique<CheckpointReader>(path_ / kShardedIndexFile);
  const std::string index_where = "checkpoint " + (path_ / kShardedIndexFile).string();
  MT_CHECK(index_->has_meta(kShardedPartsKey) && index_->has_meta(kShardedPiecesKey), index_where,
           " has no metadata '", kShardedPartsKey, "' or '", kShardedPiecesKey, "': not a sharded checkpoint's index");
  const std::vector<uint64_t>& sums = index_->read_u64s(kShardedPartsKey);
  const int n_parts = static_cast<int>(sums.size());
  MT_CHECK(n_parts >= 1, index_where, ": metadata '", kShardedPartsKey, "' lists no part");
  for (int p = 0; p < n_parts; ++p) {
    const fs::path part = path_ / sharded_part_name(p, n_parts);
    MT_CHECK(fs::exists(part, ec), where, ": part ", part.filename().string(), " is missing (the index lists ", n_parts,
             " parts)");
    parts_.push_back(std::make_unique<CheckpointReader>(part, parts));
    MT_CHECK(parts_.back()->checksum() == sums[static_cast<size_t>(p)], where, ": part ", part.filename().string(),
             " is not the one the index was written with (its root checksum differs): a part of another save");
  }
  for (IndexedPiece& ip : parse_index(index_->read_string(kShardedPiecesKey), index_where)) {
    const std::string at = str_cat(where, ": tensor '", ip.name, "'");
    MT_CHECK(ip.part < n_parts, at, ": a piece in part ", ip.part, " of ", n_parts);
    const CheckpointReader& part = *parts_[static_cast<size_t>(ip.part)];
    MT_CHECK(part.has(ip.name), at, ": part ", part.path().filename().string(), " lacks the piece the index names");
    std::vector<int64_t> piece_shape = ip.full_shape;
    if (!piece_shape.empty()) piece_shape[0] = ip.rows;
    const TensorInfo& stored = part.info(ip.name);
    MT_CHECK(stored.dtype == ip.dtype && stored.shape == piece_shape, at, ": the piece in ",
             part.path().filename().string(), " is ", stored.dtype, " ", format_shape(stored.shape), ", the index says ",
             ip.dtype, " ", format_shape(piece_shape));
    auto [it, fresh] = infos_.try_emplace(ip.name, TensorInfo{ip.dtype, ip.full_shape});
    if (fresh) names_.push_back(ip.name);
    MT_CHECK(it->second.dtype == ip.dtype && it->second.shape == ip.full_shape, at, ": its pieces disagree on dtype or shape");
    pieces_[ip.name].push_back(std::move(ip));
  }
  for (auto& [name, list] : pieces_) {
    std::sort(list.begin(), list.end(), [](const IndexedPiece& a, const IndexedPiece& b) { return a.row0 < b.row0; });
    const std::vector<int64_t>& shape = infos_.at(name).shape;
    int64_t next = 0;
    for (const IndexedPiece& p : list) {
      MT_CHECK(p.row0 == next, where, ": tensor '", name, "': its pieces ", p.row0 < next ? "overlap" : "leave a gap",
               " at row ", std::min(p.row0, next));
      next += p.rows;
    }
    MT_CHECK(next == (shape.empty() ? 1 : shape[0]), where, ": tensor '", name, "': its pieces hold ", next,
             " rows of ", format_shape(shape));
  }
}

const TensorInfo& CheckpointSource::info(const std::string& name) const {
  auto it = infos_.find(name);
  MT_CHECK(it != infos_.end(), "checkpoint ", path_.string(), " has no tensor '", name, "' (it has ", infos_.size(),
           " tensors)");
  return it->second;
}

void CheckpointSource::read_rows(const std::string& name, DType dtype, const std::vector<int64_t>& shape, int64_t row0,
                                 int64_t rows, void* out) const {
  const TensorInfo& stored = info(name);
  const std::string where = "checkpoint " + path_.string() + ": tensor '" + name + "'";
  MT_CHECK(stored.dtype == dtype, where, " is ", stored.dtype, ", expected ", dtype);
  MT_CHECK(stored.shape == shape, where, " has shape ", format_shape(stored.shape), ", expected ", format_shape(shape));
  const int64_t total_rows = shape.empty() ? 1 : shape[0];
  MT_CHECK(row0 >= 0 && rows >= 0 && row0 + rows <= total_rows, where, ": rows ", row0, "..", row0 + rows,
           " asked of ", total_rows);
  const size_t row_bytes = static_cast<size_t>(row_elements(shape)) * dtype_size(dtype);
  std::vector<unsigned char> buffer;
  for (const IndexedPiece& p : pieces_.at(name)) {
    const int64_t lo = std::max(row0, p.row0), hi = std::min(row0 + rows, p.row0 + p.rows);
    if (lo >= hi) continue;
    std::vector<int64_t> piece_shape = shape;
    if (!piece_shape.empty()) piece_shape[0] = p.rows;
    const CheckpointReader& part = *parts_[static_cast<size_t>(p.part)];
    auto* dst = static_cast<unsigned char*>(out) + static_cast<size_t>(lo - row0) * row_bytes;
    if (lo == p.row0 && hi == p.row0 + p.rows) {  // the whole piece: straight into place
      part.read(name, dtype, piece_shape, dst);
      continue;
    }
    buffer.resize(static_cast<size_t>(p.rows) * row_bytes);
    part.read(name, dtype, piece_shape, buffer.data());
    std::memcpy(dst, buffer.data() + static_cast<size_t>(lo - p.row0) * row_bytes, static_cast<size_t>(hi - lo) * row_bytes);
  }
}

}  // namespace mt
