// BPE training: piece counts, then merges with incremental pair counts. Each merge touches only
// the distinct pieces that contain the merged pair (found through a pair -> pieces index), so the
// cost per merge is proportional to where the pair occurs, not to the corpus.
#include "mt/data/bpe_trainer.h"

#include <algorithm>
#include <queue>
#include <unordered_map>

#include "mt/core/error.h"
#include "mt/data/file_bytes.h"
#include "mt/data/pretokenize.h"

namespace mt {
namespace {

using PieceCounts = std::unordered_map<std::string, int64_t>;

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

void count_pieces(std::string_view text, PieceCounts& counts) {
  for (std::string_view piece : pretokenize(text)) ++counts[std::string(piece)];
}

Tokenizer train_from_counts(const PieceCounts& counts, int32_t vocab_size) {
  MT_CHECK(vocab_size >= 257, "BPE vocab size: expected at least 257 (256 bytes + <|endoftext|>), got ", vocab_size);
  // Distinct pieces as symbol sequences, in sorted order so that everything below is deterministic.
  std::vector<const std::pair<const std::string, int64_t>*> sorted;
  sorted.reserve(counts.size());
  for (const auto& entry : counts) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  std::vector<std::vector<int32_t>> words(sorted.size());
  std::vector<int64_t> freq(sorted.size());
  for (size_t w = 0; w < sorted.size(); ++w) {
    for (char c : sorted[w]->first) words[w].push_back(static_cast<unsigned char>(c));
    freq[w] = sorted[w]->second;
  }

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> pair_words;  // may list a word twice or stale
  for (size_t w = 0; w < words.size(); ++w)
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      const uint64_t key = pair_key(words[w][i], words[w][i + 1]);
      pair_count[key] += freq[w];
      pair_words[key].push_back(static_cast<int32_t>(w));
    }
  struct Entry {
    int64_t count;
    uint64_t key;
    bool operator<(const Entry& o) const { return count != o.count ? count < o.count : key > o.key; }
  };
  std::priority_queue<Entry> heap;
  for (const auto& [key, count] : pair_count) heap.push({count, key});

  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<int32_t> stamp(words.size(), -1);  // last merge that rewrote each word
  std::unordered_map<uint64_t, int64_t> delta;
  const int32_t num_merges = vocab_size - 257;
  for (int32_t m = 0; m < num_merges; ++m) {
    // Pop until an entry matches the pair's current count (older entries are stale).
    uint64_t best = 0;
    bool found = false;
    while (!heap.empty()) {
      const Entry top = heap.top();
      heap.pop();
      const auto it = pair_count.find(top.key);
      if (it != pair_count.end() && it->second == top.count && top.count > 0) {
        best = top.key, found = true;
        break;
      }
    }
    if (!found) break;
    const int32_t left = static_cast<int32_t>(best >> 32), right = static_cast<int32_t>(best & 0xFFFFFFFFu);
    const int32_t new_id = 256 + m;
    merges.emplace_back(left, right);
    delta.clear();
    std::vector<int32_t> affected = std::move(pair_words[best]);
    pair_words.erase(best);
    for (int32_t w : affected) {
      if (stamp[w] == m) continue;
      stamp[w] = m;
      std::vector<int32_t>& word = words[w];
      for (size_t i = 0; i + 1 < word.size(); ++i) delta[pair_key(word[i], word[i + 1])] -= freq[w];
      size_t out = 0;
      for (size_t i = 0; i < word.size(); ++out) {
        if (i + 1 < word.size() && word[i] == left && word[i + 1] == right) {
          word[out] = new_id, i += 2;
        } else {
          word[out] = word[i], i += 1;
        }
      }
      word.resize(out);
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        const uint64_t key = pair_key(word[i], word[i + 1]);
        delta[key] += freq[w];
        if (word[i] == new_id || word[i + 1] == new_id) pair_words[key].push_back(w);
      }
    }
    for (const auto& [key, d] : delta) {
      if (d == 0) continue;
      int64_t& count = pair_count[key];
      count += d;
      MT_ASSERT(count >= 0);
      if (count == 0) {
        pair_count.erase(key);
      } else {
        heap.push({count, key});
      }
    }
    MT_ASSERT(!pair_count.contains(best));
  }
  return Tokenizer(ByteOrder::kIdentity, std::move(merges));
}

}  // namespace

Tokenizer train_bpe(const std::vector<std::string>& files, int32_t vocab_size) {
  MT_CHECK(!files.empty(), "BPE training: expected at least one input file");
  PieceCounts counts;
  for (const std::string& path : files) count_pieces(read_file_bytes(path), counts);
  return train_from_counts(counts, vocab_size);
}

Tokenizer train_bpe_on_text(std::string_view text, int32_t vocab_size) {
  PieceCounts counts;
  count_pieces(text, counts);
  return train_from_counts(counts, vocab_size);
}

}  // namespace mt
