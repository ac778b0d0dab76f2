// Sharded checkpoints: a folder in which every rank writes its own part, in parallel, and an index
// naming every tensor's pieces (Note [Sharded checkpoints]). The writer is here; reading, which
// reshards to any rank count, is CheckpointSource (checkpoint_source.h).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "mt/core/tensor.h"
#include "mt/dist/communicator.h"
#include "mt/io/checkpoint.h"

namespace mt {

// Note [Sharded checkpoints]
// checkpoint.format: sharded. A checkpoint is a folder <run_dir>/checkpoints/step_XXXXXXXX/ holding
//  - part-RRRRR-of-NNNNN.h5, one per rank of the saving job: a checkpoint file (Note [Checkpoint
//    format]) whose tensors are pieces: rows [row0, row0 + rows) along dimension 0 of a logical
//    tensor, stored under the logical tensor's name (a 0-d tensor is one whole piece); metadata
//    `part` (the rank) and `parts`.
//  - index.h5: a checkpoint file without tensors: the training metadata (step, recipe, ...) as a
//    single file holds it, plus `sharded.parts` (each part's root checksum, by rank) and
//    `sharded.pieces` (one line per piece: name, dtype, full shape, part, row0, rows; tab-separated).
// Who writes what: every rank lists the pieces it holds (model tensors, its expert chunk, its share
// of the optimizer state under ZeRO: whatever its own state dicts hold), the lists are exchanged,
// and a piece several ranks hold (replicated tensors; experts over an expert-data-parallel group) is
// given to one of them: largest first, to the holder with the fewest bytes so far (lowest rank on a
// tie), computed the same on every rank. A piece one rank holds is written by it. Nothing is
// gathered: each rank writes from its own tensors, one host copy at a time, so a write needs about
// the memory of the rank's own state.
// Commit: the parts are written into step_XXXXXXXX.tmp/, each part file itself via temp + fsync +
// rename; the ranks agree that every part committed; rank 0 then writes index.h5, renames the
// folder to step_XXXXXXXX and fsyncs checkpoints/; `latest` is updated after that. A folder is a
// checkpoint only with a verified index whose parts are all present with the root checksums it
// records: a rank killed while writing leaves step_XXXXXXXX.tmp/ (ignored, removed when that step
// is saved again) and `latest` names the previous checkpoint.
// Reading (CheckpointSource) reshards: a rank needing rows [a, b) of a tensor reads the pieces that
// overlap them (a piece inside the range straight into place; its crc32 is checked on the bytes read)
// and copies the overlap, so a checkpoint loads on any rank count, dist.ep and dist.zero.

// A piece this rank holds: rows [row0, row0 + data.size(0)) of the logical tensor `name` of shape
// `full_shape` (a 0-d tensor: the whole of it, row0 0). `data` may live on any device.
struct ShardPiece {
  std::string name;
  Tensor data;
  std::vector<int64_t> full_shape;
  int64_t row0 = 0;
};

// One line of the index: which part holds rows [row0, row0 + rows) of a tensor.
struct IndexedPiece {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> full_shape;
  int part = 0;
  int64_t row0 = 0;
  int64_t rows = 1;  // 1 for a 0-d tensor
};

inline constexpr const char* kShardedIndexFile = "index.h5";
inline constexpr const char* kShardedPartsKey = "sharded.parts";
inline constexpr const char* kShardedPiecesKey = "sharded.pieces";

// "part-00002-of-00004.h5"
std::string sharded_part_name(int part, int parts);
std::string format_index(const std::vector<IndexedPiece>& pieces);
// `where` names the index in errors.
std::vector<IndexedPiece> parse_index(const std::string& text, const std::string& where);

// Writes the sharded checkpoint `folder` (Note [Sharded checkpoints]) from the pieces each rank
// holds; `write_meta` adds the training metadata to the index (called on rank 0). A collective over
// `world`: every rank returns once the folder is committed, or every rank throws (a rank's own error,
// or one saying which rank failed), leaving any earlier checkpoint as it was.
void write_sharded_checkpoint(const std::filesystem::path& folder, const Communicator& world,
                              const std::vector<ShardPiece>& held,
                              const std::function<void(CheckpointWriter&)>& write_meta);

}  // namespace mt
