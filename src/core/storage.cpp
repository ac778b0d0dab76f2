// Storage and the CPU allocator (aligned malloc with statistics). The CUDA caching allocator
// lives in src/core/cuda/ and is reached through allocator_for().
#include "mt/core/storage.h"

#include <cstdlib>
#include <mutex>

#include "mt/core/error.h"

namespace mt {

namespace {

class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    size_t n = (std::max<size_t>(nbytes, 1) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, n);
    MT_CHECK(p != nullptr, "out of host memory allocating ", nbytes, " bytes");
    std::lock_guard<std::mutex> lock(mu_);
    stats_.allocated += nbytes;
    stats_.reserved += nbytes;
    stats_.device_allocs += 1;
    stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
    return p;
  }
  void deallocate(void* ptr, size_t nbytes) override {
    std::free(ptr);
    std::lock_guard<std::mutex> lock(mu_);
    stats_.allocated -= nbytes;
    stats_.reserved -= nbytes;
  }
  AllocatorStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

 private:
  mutable std::mutex mu_;
  AllocatorStats stats_;
};

}  // namespace

#ifdef MT_WITH_CUDA
Allocator& cuda_caching_allocator(int device);  // src/core/cuda/caching_allocator.cpp
#endif

Allocator& allocator_for(Device device) {
  static CpuAllocator cpu;
  if (device.is_cpu()) return cpu;
#ifdef MT_WITH_CUDA
  return cuda_caching_allocator(device.index);
#else
  MT_FAIL("device ", device, " requested but moetrain was built without CUDA");
#endif
}

AllocatorStats allocator_stats(Device device) { return allocator_for(device).stats(); }

StorageImpl::StorageImpl(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  data_ = allocator_for(device).allocate(nbytes);
}

StorageImpl::~StorageImpl() {
  if (data_) allocator_for(device_).deallocate(data_, nbytes_);
}

}  // namespace mt
