// Storage: refcounted bytes on one device, plus the allocator interface and its statistics.
// The version counter lives here so every view of the same bytes sees in-place changes.
#pragma once
#include <cstdint>
#include <atomic>
#include <cstddef>
#include <memory>

#include "mt/core/device.h"

namespace mt {

struct AllocatorStats {
  size_t allocated = 0;       // bytes handed out and not yet returned
  size_t reserved = 0;        // bytes held from the device (cached included)
  size_t peak_allocated = 0;  // high-water mark of `allocated`
  size_t device_allocs = 0;   // calls to the device's own allocator (cudaMalloc)
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
  virtual AllocatorStats stats() const = 0;
  virtual void empty_cache() {}
};

Allocator& allocator_for(Device device);
AllocatorStats allocator_stats(Device device);

class StorageImpl {
 public:
  StorageImpl(size_t nbytes, Device device);
  ~StorageImpl();
  StorageImpl(const StorageImpl&) = delete;
  StorageImpl& operator=(const StorageImpl&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  uint32_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  std::atomic<uint32_t> version_{0};
};

using Storage = std::shared_ptr<StorageImpl>;

}  // namespace mt
