// The sharded checkpoint writer and the index's text form: pieces exchanged, each given to one
// holder, every rank's part written in parallel, the index last (Note [Sharded checkpoints]).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <tuple>

#include "mt/core/error.h"
#include "mt/io/checkpoint_format.h"
#include "mt/io/checkpoint_fs.h"
#include "mt/io/sharded_checkpoint.h"

namespace mt {
namespace fs = std::filesystem;

std::string sharded_part_name(int part, int parts) {
  char name[48];
  std::snprintf(name, sizeof name, "part-%05d-of-%05d.h5", part, parts);
  return name;
}

namespace {

std::string shape_field(const std::vector<int64_t>& shape) {
  if (shape.empty()) return "-";
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  return s;
}

int64_t parse_int(const std::string& s, const std::string& where) {
  MT_CHECK(!s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }),
           where, ": expected a non-negative integer, got '", s, "'");
  return std::stoll(s);
}

}  // namespace

std::string format_index(const std::vector<IndexedPiece>& pieces) {
  std::string out;
  for (const IndexedPiece& p : pieces)
    out += str_cat(p.name, '\t', dtype_name(p.dtype), '\t', shape_field(p.full_shape), '\t', p.part, '\t', p.row0,
                   '\t', p.rows, '\n');
  return out;
}

std::vector<IndexedPiece> parse_index(const std::string& text, const std::string& where) {
  std::vector<IndexedPiece> out;
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const std::string at = str_cat(where, ": line ", n, " of '", kShardedPiecesKey, "'");
    std::vector<std::string> f;
    std::istringstream fields(line);
    for (std::string x; std::getline(fields, x, '\t');) f.push_back(x);
    MT_CHECK(f.size() == 6, at, ": expected 6 tab-separated fields (name, dtype, shape, part, row0, rows), got ", f.size());
    IndexedPiece p;
    p.name = f[0];
    try {
      p.dtype = dtype_from_name(f[1]);
    } catch (const Error& e) {
      MT_FAIL(at, ": ", e.what());
    }
    if (f[2] != "-") {
      std::istringstream dims(f[2]);
      for (std::string d; std::getline(dims, d, ',');) p.full_shape.push_back(parse_int(d, at));
    }
    p.part = static_cast<int>(parse_int(f[3], at));
    p.row0 = parse_int(f[4], at);
    p.rows = parse_int(f[5], at);
    out.push_back(std::move(p));
  }
  return out;
}

namespace {

// Runs `f` on every rank and agrees on the outcome: every rank returns, or every rank throws (its own
// error, or one naming the lowest rank that failed).
template <typename F>
void on_every_rank(const Communicator& world, const fs::path& folder, const char* what, F&& f) {
  std::exception_ptr mine;
  try {
    f();
  } catch (...) {
    mine = std::current_exception();
  }
  const double failed = world.all_reduce(mine ? static_cast<double>(world.size() - world.rank()) : 0.0, ReduceKind::kMax);
  if (mine) std::rethrow_exception(mine);
  MT_CHECK(failed == 0, "checkpoint ", folder.string(), ": rank ", world.size() - static_cast<int>(failed),
           " failed ", what, " (its message says why)");
}

// Every rank's string, by rank (a collective).
std::vector<std::string> all_gather_strings(const Communicator& world, const std::string& mine) {
  Tensor len = Tensor::from_vector<int64_t>({static_cast<int64_t>(mine.size())}, {1});
  Tensor lens = Tensor::empty({world.size()}, DType::kI64);
  world.all_gather(len, lens);
  const std::vector<int64_t> n = lens.to_vector<int64_t>();
  const int64_t longest = std::max<int64_t>(1, *std::max_element(n.begin(), n.end()));
  Tensor in = Tensor::empty({longest}, DType::kBool);  // bytes
  std::memset(in.data_ptr(), 0, static_cast<size_t>(longest));
  std::memcpy(in.data_ptr(), mine.data(), mine.size());
  Tensor out = Tensor::empty({longest * world.size()}, DType::kBool);
  world.all_gather(in, out);
  std::vector<std::string> all;
  const char* p = static_cast<const char*>(out.data_ptr());
  for (int r = 0; r < world.size(); ++r) all.emplace_back(p + r * longest, static_cast<size_t>(n[static_cast<size_t>(r)]));
  return all;
}

int64_t piece_rows(const ShardPiece& p) { return p.full_shape.empty() ? 1 : p.data.size(0); }

// Every piece of every rank with the part that writes it, in the order of the ranks' lists (the same
// on every rank).
std::vector<IndexedPiece> assign_pieces(const std::vector<std::string>& lists, const std::string& where) {
  using Key = std::tuple<std::string, int64_t, int64_t>;  // name, row0, rows
  struct Held {
    IndexedPiece piece;
    std::vector<int> holders;
    size_t bytes = 0;
  };
  std::map<Key, Held> held;
  std::vector<Key> order;
  for (int r = 0; r < static_cast<int>(lists.size()); ++r)
    for (const IndexedPiece& p : parse_index(lists[static_cast<size_t>(r)], where)) {
      const Key key{p.name, p.row0, p.rows};
      auto [it, fresh] = held.try_emplace(key);
      if (fresh) {
        int64_t numel = p.rows;
        for (size_t d = 1; d < p.full_shape.size(); ++d) numel *= p.full_shape[d];
        it->second.piece = p;
        it->second.bytes = static_cast<size_t>(numel) * dtype_size(p.dtype);
        order.push_back(key);
      }
      MT_CHECK(it->second.piece.dtype == p.dtype && it->second.piece.full_shape == p.full_shape, where,
                ": ranks disagree on the dtype or shape of '", p.name, "'");
      it->second.holders.push_back(r);
    }
  std::vector<size_t> load(lists.size(), 0);
  std::vector<const Key*> shared;
  for (const Key& k : order) {
    Held& h = held.at(k);
    if (h.holders.size() == 1) {
      h.piece.part = h.holders[0];
      load[static_cast<size_t>(h.holders[0])] += h.bytes;
    } else {
      shared.push_back(&k);
    }
  }
  std::stable_sort(shared.begin(), shared.end(),
                   [&](const Key* a, const Key* b) { return held.at(*a).bytes > held.at(*b).bytes; });
  for (const Key* k : shared) {
    Held& h = held.at(*k);
    int best = h.holders[0];
    for (int r : h.holders)
      if (load[static_cast<size_t>(r)] < load[static_cast<size_t>(best)]) best = r;
    h.piece.part = best;
    load[static_cast<size_t>(best)] += h.bytes;
  }
  std::vector<IndexedPiece> out;
  for (const Key& k : order) out.push_back(held.at(k).piece);
  return out;
}

}  // namespace

void write_sharded_checkpoint(const fs::path& folder, const Communicator& world, const std::vector<ShardPiece>& held,
                              const std::function<void(CheckpointWriter&)>& write_meta) {
  const fs::path tmp = fs::path(folder.string() + ".tmp");
  const std::string where = "checkpoint " + folder.string();
  std::vector<IndexedPiece> mine;
  for (const ShardPiece& p : held) {
    ckpt::check_name(p.name, "tensor");
    MT_CHECK(p.full_shape.empty() ? p.data.dim() == 0 && p.row0 == 0 : p.data.dim() == static_cast<int>(p.full_shape.size()),
             where, ": piece of '", p.name, "' has shape ", p.data.shape(), ", not rows of ", format_shape(p.full_shape));
    mine.push_back({p.name, p.data.dtype(), p.full_shape, world.rank(), p.row0, piece_rows(p)});
  }
  const std::vector<IndexedPiece> pieces = assign_pieces(all_gather_strings(world, format_index(mine)), where);

  on_every_rank(world, folder, "to prepare the folder", [&] {
    if (world.rank() != 0) return;
    fs::remove_all(tmp);  // a write that was interrupted
    fs::create_directories(tmp);
  });

  uint32_t checksum = 0;
  on_every_rank(world, folder, "to write its part", [&] {
    std::map<std::pair<std::string, int64_t>, const ShardPiece*> by_key;
    for (const ShardPiece& p : held) by_key[{p.name, p.row0}] = &p;
    CheckpointWriter w(tmp / sharded_part_name(world.rank(), world.size()));
    for (const IndexedPiece& ip : pieces) {
      if (ip.part != world.rank()) continue;
      const ShardPiece& p = *by_key.at({ip.name, ip.row0});
      const Tensor host = p.data.detach().to(Device::cpu()).contiguous();  // (rows, ...) one at a time
      w.write(p.name, host.dtype(), std::vector<int64_t>(host.shape().begin(), host.shape().end()),
              host.numel() ? host.data_ptr() : nullptr);
    }
    w.write_int("part", world.rank());
    w.write_int("parts", world.size());
    w.commit();
    checksum = w.checksum();
  });

  Tensor sum = Tensor::from_vector<int64_t>({static_cast<int64_t>(checksum)}, {1});
  Tensor sums = Tensor::empty({world.size()}, DType::kI64);
  world.all_gather(sum, sums);
  on_every_rank(world, folder, "to commit the index", [&] {
    if (world.rank() != 0) return;
    std::vector<uint64_t> parts;
    for (int64_t s : sums.to_vector<int64_t>()) parts.push_back(static_cast<uint64_t>(s));
    {
      CheckpointWriter index(tmp / kShardedIndexFile);
      write_meta(index);
      index.write_u64s(kShardedPartsKey, parts);
      index.write_string(kShardedPiecesKey, format_index(pieces));
      index.commit();
    }
    // Note [Sharded checkpoints]: the folder takes its final name only whole. Saving a step again
    // replaces the folder of that step.
    if (fs::exists(folder)) fs::remove_all(folder);
    durable_rename(tmp, folder);
  });
}

}  // namespace mt
