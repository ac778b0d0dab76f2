// The CUDA caching allocator: blocks rounded to 512 B come from per-stream free pools (small
// requests from 2 MiB segments, large ones from bigger segments, split and re-merged), so the
// training step does no cudaMalloc once warm. Freed blocks are reused only on the stream that
// allocated them, which orders reuse after every kernel that used them on that stream, or only by
// the graph pool they came from (set_graph_pool, Note [The captured step]).
#include <algorithm>
#include <functional>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "device_guard.h"
#include "mt/core/cuda_context.h"
#include "mt/core/storage.h"

namespace mt {

namespace {

constexpr size_t kMinBlockSize = 512;             // every block size is a multiple of this
constexpr size_t kSmallSize = size_t{1} << 20;    // requests up to 1 MiB use the small pool
constexpr size_t kSmallBuffer = size_t{2} << 20;  // small-pool segments
constexpr size_t kLargeBuffer = size_t{20} << 20; // segments for requests of 1-10 MiB
constexpr size_t kMinLargeAlloc = size_t{10} << 20;
constexpr size_t kRoundLarge = size_t{2} << 20;   // larger requests get their own segment, rounded

// A piece of one cudaMalloc'd segment; neighbours in the segment are linked so frees re-merge.
struct Block {
  size_t size = 0;
  void* ptr = nullptr;
  cudaStream_t stream = nullptr;  // the pool's key: the allocating stream, or a graph pool's key
  bool small = false;
  bool allocated = false;
  Block* prev = nullptr;
  Block* next = nullptr;
};

struct BlockOrder {  // by stream, then size (best fit), then address
  bool operator()(const Block* a, const Block* b) const {
    if (a->stream != b->stream) return std::less<cudaStream_t>()(a->stream, b->stream);
    if (a->size != b->size) return a->size < b->size;
    return std::less<void*>()(a->ptr, b->ptr);
  }
};

using FreePool = std::set<Block*, BlockOrder>;

size_t round_size(size_t nbytes) {
  return (std::max<size_t>(nbytes, 1) + kMinBlockSize - 1) / kMinBlockSize * kMinBlockSize;
}

size_t segment_size(size_t size) {
  if (size <= kSmallSize) return kSmallBuffer;
  if (size < kMinLargeAlloc) return kLargeBuffer;
  return (size + kRoundLarge - 1) / kRoundLarge * kRoundLarge;
}

class CudaCachingAllocator final : public Allocator {
 public:
  explicit CudaCachingAllocator(int device) : device_(device) {}

  void* allocate(size_t nbytes) override {
    size_t size = round_size(nbytes);
    cudaStream_t compute = current_stream(device_);
    std::lock_guard<std::mutex> lock(mu_);
    cudaStream_t stream = graph_pool_ ? graph_pool_ : compute;
    bool small = size <= kSmallSize;
    FreePool& pool = small ? small_free_ : large_free_;
    Block key;
    key.size = size;
    key.stream = stream;
    Block* b = nullptr;
    auto it = pool.lower_bound(&key);
    if (it != pool.end() && (*it)->stream == stream) {
      b = *it;
      pool.erase(it);
    } else {
      size_t seg = segment_size(size);
      b = new Block();
      b->size = seg;
      b->ptr = device_malloc(seg, nbytes);
      b->stream = stream;
      b->small = small;
    }
    size_t rest = b->size - size;
    if (small ? rest >= kMinBlockSize : rest > kSmallSize) {
      Block* r = new Block();
      r->size = rest;
      r->ptr = static_cast<char*>(b->ptr) + size;
      r->stream = stream;
      r->small = small;
      r->prev = b;
      r->next = b->next;
      if (b->next) b->next->prev = r;
      b->next = r;
      b->size = size;
      pool.insert(r);
    }
    b->allocated = true;
    live_[b->ptr] = b;
    stats_.allocated += nbytes;
    stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
    return b->ptr;
  }

  void deallocate(void* ptr, size_t nbytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(ptr);
    MT_CHECK(it != live_.end(), "CUDA caching allocator: free of pointer ", ptr, " not allocated on cuda:", device_);
    Block* b = it->second;
    live_.erase(it);
    b->allocated = false;
    stats_.allocated -= nbytes;
    FreePool& pool = b->small ? small_free_ : large_free_;
    if (b->prev && !b->prev->allocated) {  // merge into the free block before
      Block* p = b->prev;
      pool.erase(p);
      p->size += b->size;
      p->next = b->next;
      if (b->next) b->next->prev = p;
      delete b;
      b = p;
    }
    if (b->next && !b->next->allocated) {  // absorb the free block after
      Block* n = b->next;
      pool.erase(n);
      b->size += n->size;
      b->next = n->next;
      if (n->next) n->next->prev = b;
      delete n;
    }
    pool.insert(b);
  }

  AllocatorStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  void set_graph_pool(const void* pool) {
    std::lock_guard<std::mutex> lock(mu_);
    graph_pool_ = static_cast<cudaStream_t>(const_cast<void*>(pool));
    if (graph_pool_) graph_pools_.insert(graph_pool_);
  }

  const void* graph_pool() const {
    std::lock_guard<std::mutex> lock(mu_);
    return graph_pool_;
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mu_);
    release_cached();
  }

 private:
  // cudaMalloc of one segment; on out-of-memory, frees the cached segments and tries once more.
  void* device_malloc(size_t seg, size_t requested) {
    DeviceGuard guard(device_);
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, seg);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the (non-sticky) error before retrying
      release_cached();
      err = cudaMalloc(&p, seg);
    }
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_bytes = 0, total_bytes = 0;
      cudaMemGetInfo(&free_bytes, &total_bytes);
      MT_FAIL("CUDA out of memory on cuda:", device_, ": tried to allocate ", requested, " bytes (segment of ", seg,
              "); moetrain has ", stats_.allocated, " bytes allocated and ", stats_.reserved,
              " reserved; the device has ", free_bytes, " free of ", total_bytes);
    }
    MT_CUDA_CHECK(err);
    stats_.reserved += seg;
    stats_.device_allocs += 1;
    return p;
  }

  // Returns every whole free segment (a free block with no neighbours) to the device.
  void release_cached() {
    DeviceGuard guard(device_);
    for (FreePool* pool : {&small_free_, &large_free_}) {
      for (auto it = pool->begin(); it != pool->end();) {
        Block* b = *it;
        if (b->prev || b->next || graph_pools_.count(b->stream)) {  // a graph may replay into a pool's segment
          ++it;
          continue;
        }
        MT_CUDA_CHECK(cudaFree(b->ptr));  // synchronises the device, so no kernel still uses it
        stats_.reserved -= b->size;
        it = pool->erase(it);
        delete b;
      }
    }
  }

  int device_;
  mutable std::mutex mu_;
  FreePool small_free_, large_free_;
  std::unordered_map<void*, Block*> live_;
  AllocatorStats stats_;
  cudaStream_t graph_pool_ = nullptr;  // set: the key every allocation takes (set_graph_pool)
  std::set<cudaStream_t> graph_pools_;  // every graph pool's key: their segments are never released
};

}  // namespace

static CudaCachingAllocator& caching_allocator(int device) {
  // One per visible device, never destroyed (Note [CUDA singletons live until exit], cuda_context.cpp).
  static std::vector<CudaCachingAllocator*>* allocators = [] {
    auto* v = new std::vector<CudaCachingAllocator*>();
    for (int i = 0; i < cuda_device_count(); ++i) v->push_back(new CudaCachingAllocator(i));
    return v;
  }();
  check_cuda_device(device);
  return *(*allocators)[device];
}

Allocator& cuda_caching_allocator(int device) { return caching_allocator(device); }

void set_graph_pool(int device, const void* pool) { caching_allocator(device).set_graph_pool(pool); }

const void* graph_pool(int device) { return caching_allocator(device).graph_pool(); }

}  // namespace mt
