// Tests of the CUDA core: device discovery, the caching allocator (reuse, statistics, empty_cache),
// byte copies between host and devices, streams, handles, workspace and events.
// Tests that need a GPU skip with a message when none is visible.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "mt/core/cuda_context.h"
#include "mt/core/device_copy.h"
#include "mt/core/storage.h"

namespace mt {
namespace {

#define MT_REQUIRE_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: this test needs a GPU"

TEST(CudaCore, DeviceCountIsConsistentWithAvailability) {
  int n = -1;
  EXPECT_NO_THROW(n = cuda_device_count());
  EXPECT_GE(n, 0);
  EXPECT_EQ(cuda_available(), n > 0);
}

TEST(CudaCore, BadDeviceIndexIsAClearError) {
  int n = cuda_device_count();
  try {
    allocator_for(Device::cuda(n));
    FAIL() << "expected an error for cuda:" << n;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda:" + std::to_string(n)), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("visible"), std::string::npos) << e.what();
  }
  EXPECT_THROW(current_stream(-1), Error);
}

TEST(CachingAllocator, SteadyStateDoesNoDeviceMalloc) {
  MT_REQUIRE_GPU();
  Allocator& a = allocator_for(Device::cuda(0));
  const std::vector<size_t> sizes = {1, 100, 512, 513, 4096, 1 << 20, (1 << 20) + 1, 3 << 20, 12 << 20, 33 << 20};
  auto round = [&] {
    std::vector<void*> ptrs;
    for (size_t s : sizes) ptrs.push_back(a.allocate(s));
    for (size_t i = 0; i < sizes.size(); ++i) a.deallocate(ptrs[i], sizes[i]);
  };
  round();  // warm up
  size_t mallocs = a.stats().device_allocs;
  size_t reserved = a.stats().reserved;
  for (int it = 0; it < 50; ++it) round();
  EXPECT_EQ(a.stats().device_allocs, mallocs);
  EXPECT_EQ(a.stats().reserved, reserved);
}

TEST(CachingAllocator, StatsTrackAllocatedAndPeak) {
  MT_REQUIRE_GPU();
  Allocator& a = allocator_for(Device::cuda(0));
  AllocatorStats before = a.stats();
  void* p1 = a.allocate(1000);
  void* p2 = a.allocate(5 << 20);
  EXPECT_EQ(a.stats().allocated, before.allocated + 1000 + (5 << 20));
  EXPECT_GE(a.stats().peak_allocated, before.allocated + 1000 + (5 << 20));
  EXPECT_GE(a.stats().reserved, a.stats().allocated);
  size_t peak = a.stats().peak_allocated;
  a.deallocate(p2, 5 << 20);
  EXPECT_EQ(a.stats().allocated, before.allocated + 1000);
  EXPECT_EQ(a.stats().peak_allocated, peak);
  a.deallocate(p1, 1000);
  EXPECT_EQ(a.stats().allocated, before.allocated);
}

TEST(CachingAllocator, DistinctLiveBlocksDoNotOverlapAndAreAligned) {
  MT_REQUIRE_GPU();
  Allocator& a = allocator_for(Device::cuda(0));
  std::vector<std::pair<char*, size_t>> live;
  for (size_t s : {7u, 512u, 600u, 100000u, 2000000u, 64u}) live.push_back({static_cast<char*>(a.allocate(s)), s});
  for (size_t i = 0; i < live.size(); ++i) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(live[i].first) % 256, 0u);
    for (size_t j = i + 1; j < live.size(); ++j) {
      bool disjoint = live[i].first + live[i].second <= live[j].first || live[j].first + live[j].second <= live[i].first;
      EXPECT_TRUE(disjoint) << "blocks " << i << " and " << j << " overlap";
    }
  }
  for (auto& [p, s] : live) a.deallocate(p, s);
}

TEST(CachingAllocator, EmptyCacheReturnsFreeSegments) {
  MT_REQUIRE_GPU();
  Allocator& a = allocator_for(Device::cuda(0));
  void* p = a.allocate(64 << 20);
  size_t reserved_live = a.stats().reserved;
  a.deallocate(p, 64 << 20);
  EXPECT_EQ(a.stats().reserved, reserved_live);  // cached, not freed
  a.empty_cache();
  EXPECT_LE(a.stats().reserved + (64 << 20), reserved_live);
  size_t mallocs = a.stats().device_allocs;
  void* q = a.allocate(64 << 20);  // must come from the device again
  EXPECT_EQ(a.stats().device_allocs, mallocs + 1);
  a.deallocate(q, 64 << 20);
}

TEST(CachingAllocator, OutOfMemoryNamesTheSizes) {
  MT_REQUIRE_GPU();
  Allocator& a = allocator_for(Device::cuda(0));
  size_t huge = size_t{1} << 50;  // 1 PiB
  try {
    a.allocate(huge);
    FAIL() << "expected out of memory";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("out of memory"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::to_string(huge)), std::string::npos) << msg;
    EXPECT_NE(msg.find("reserved"), std::string::npos) << msg;
  }
  void* p = a.allocate(1024);  // the allocator still works
  a.deallocate(p, 1024);
}

TEST(DeviceCopy, RoundTripsHostDeviceDevice) {
  MT_REQUIRE_GPU();
  const size_t n = 1037;
  std::vector<int32_t> host(n), back(n, -1);
  std::iota(host.begin(), host.end(), -500);
  Allocator& a = allocator_for(Device::cuda(0));
  void* d1 = a.allocate(n * 4);
  void* d2 = a.allocate(n * 4);
  copy_bytes(d1, Device::cuda(0), host.data(), Device::cpu(), n * 4);
  copy_bytes(d2, Device::cuda(0), d1, Device::cuda(0), n * 4);
  copy_bytes(back.data(), Device::cpu(), d2, Device::cuda(0), n * 4);
  EXPECT_EQ(back, host);
  synchronize(Device::cuda(0));
  a.deallocate(d1, n * 4);
  a.deallocate(d2, n * 4);
}

TEST(DeviceCopy, AcrossTwoDevices) {
  if (cuda_device_count() < 2) GTEST_SKIP() << "needs two CUDA devices, " << cuda_device_count() << " visible";
  std::vector<double> host = {1.5, -2.25, 3.0}, back(3, 0.0);
  void* d0 = allocator_for(Device::cuda(0)).allocate(24);
  void* d1 = allocator_for(Device::cuda(1)).allocate(24);
  copy_bytes(d0, Device::cuda(0), host.data(), Device::cpu(), 24);
  copy_bytes(d1, Device::cuda(1), d0, Device::cuda(0), 24);
  copy_bytes(back.data(), Device::cpu(), d1, Device::cuda(1), 24);
  EXPECT_EQ(back, host);
  allocator_for(Device::cuda(0)).deallocate(d0, 24);
  allocator_for(Device::cuda(1)).deallocate(d1, 24);
}

TEST(CudaContext, StreamAndHandlesAreStablePerDevice) {
  MT_REQUIRE_GPU();
  cudaStream_t s = current_stream(0);
  EXPECT_NE(s, nullptr);  // not the legacy default stream
  EXPECT_EQ(current_stream(0), s);
  EXPECT_EQ(cublaslt_handle(0), cublaslt_handle(0));
  cudnnHandle_t h = cudnn_handle(0);
  cudaStream_t bound = nullptr;
  MT_CUDNN_CHECK(cudnnGetStream(h, &bound));
  EXPECT_EQ(bound, s);
}

TEST(CudaContext, WorkspaceGrowsAndIsUsable) {
  MT_REQUIRE_GPU();
  void* w1 = cuda_workspace(0, 1000);
  ASSERT_NE(w1, nullptr);
  EXPECT_EQ(cuda_workspace(0, 500), w1);  // big enough already
  void* w2 = cuda_workspace(0, 8 << 20);
  MT_CUDA_CHECK(cudaMemsetAsync(w2, 0, 8 << 20, current_stream(0)));
  synchronize(Device::cuda(0));
}

TEST(CudaContext, EventsMeasureElapsedTime) {
  MT_REQUIRE_GPU();
  CudaEvent start, stop;
  void* buf = allocator_for(Device::cuda(0)).allocate(64 << 20);
  start.record(current_stream(0));
  for (int i = 0; i < 10; ++i) MT_CUDA_CHECK(cudaMemsetAsync(buf, i, 64 << 20, current_stream(0)));
  stop.record(current_stream(0));
  stop.synchronize();
  EXPECT_GT(start.elapsed_ms(stop), 0.0f);
  allocator_for(Device::cuda(0)).deallocate(buf, 64 << 20);
}

}  // namespace
}  // namespace mt
