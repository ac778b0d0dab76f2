// MoE kernels. The router runs in three launches: (1) a thread per token takes the softmax and the
// k choices and counts choices per (level, expert) in its block of 256 tokens; (2) one block scans
// those counts over blocks (the expert's position before each block) and settles the level offsets,
// counters and loss statistics; (3) a thread per token ranks itself among its block's tokens of the
// same expert (warp match + per-warp counts) and gets its slot and weight. Every sum runs in a
// fixed order, so results are deterministic. Random token selection picks each expert's keepers in a
// block of its own (select_kernel). The row moves are grid-stride loops over 16-byte packs.
#include <initializer_list>
#include <limits>

#include "device_utils.cuh"
#include "launch_utils.cuh"
#include "moe.h"

namespace mt::gpu {

namespace {

constexpr int kRouteBlock = 256;  // tokens per block of the per-token kernels, one thread each
constexpr int kRouteWarps = kRouteBlock / 32;
constexpr int kScanThreads = 1024;

__device__ __forceinline__ float exp_of(float x) { return expf(x); }
__device__ __forceinline__ double exp_of(double x) { return exp(x); }
__device__ __forceinline__ float log_of(float x) { return logf(x); }
__device__ __forceinline__ double log_of(double x) { return log(x); }

size_t align16(size_t bytes) { return (bytes + 15) / 16 * 16; }

// Byte offsets of the router's scratch arrays.
struct RouteScratch {
  int64_t blocks = 0;
  size_t hist = 0;          // int [k][blocks][E]: choices per level, block and expert
  size_t prefix = 0;        // int [k][blocks][E]: the same, summed over the earlier blocks
  size_t level_offset = 0;  // int [k][E]: slots of the expert taken by earlier levels
  size_t gate_partial = 0;  // T [blocks][E]: sum of the block's softmax per expert
  size_t z_partial = 0;     // T [blocks]: sum of the block's lse^2
  size_t total = 0;
};

RouteScratch route_scratch(int64_t tokens, int64_t experts, int64_t top_k, size_t float_size) {
  RouteScratch s;
  s.blocks = (tokens + kRouteBlock - 1) / kRouteBlock;
  auto take = [&](size_t bytes) {
    size_t at = s.total;
    s.total += align16(bytes);
    return at;
  };
  const size_t counts = static_cast<size_t>(top_k * s.blocks * experts) * sizeof(int);
  s.hist = take(counts);
  s.prefix = take(counts);
  s.level_offset = take(static_cast<size_t>(top_k * experts) * sizeof(int));
  s.gate_partial = take(static_cast<size_t>(s.blocks * experts) * float_size);
  s.z_partial = take(static_cast<size_t>(s.blocks) * float_size);
  return s;
}

// (1) Softmax, choices and per-block counts. Shared: m, 1/sum, group partials, reduction scratch
// (T [kRouteBlock] each), then the block's counts (int [k][E]).
template <typename T>
__global__ void __launch_bounds__(kRouteBlock)
    route_choose_kernel(const T* __restrict__ logits, const T* __restrict__ noise, int64_t tokens, int experts, int k,
                        int64_t* __restrict__ expert, T* __restrict__ prob, T* __restrict__ lse,
                        int* __restrict__ hist, T* __restrict__ gate_partial, T* __restrict__ z_partial) {
  extern __shared__ __align__(16) unsigned char smem[];
  T* m_s = reinterpret_cast<T*>(smem);
  T* inv_s = m_s + kRouteBlock;
  T* part_s = inv_s + kRouteBlock;
  T* red_s = part_s + kRouteBlock;
  int* hist_s = reinterpret_cast<int*>(red_s + kRouteBlock);
  const int tid = threadIdx.x;
  const int64_t block = blockIdx.x, first = block * kRouteBlock;
  const int count = tokens - first < kRouteBlock ? static_cast<int>(tokens - first) : kRouteBlock;
  for (int i = tid; i < k * experts; i += kRouteBlock) hist_s[i] = 0;
  __syncthreads();

  T z = 0;
  if (tid < count) {
    const int64_t t = first + tid;
    const T* row = logits + t * experts;
    const T* nrow = noise ? noise + t * experts : nullptr;
    T m = row[0];
    for (int e = 1; e < experts; ++e) m = row[e] > m ? row[e] : m;
    T s = 0;
    for (int e = 0; e < experts; ++e) s += exp_of(row[e] - m);
    const T inv = T(1) / s;
    const T l = m + log_of(s);
    lse[t] = l;
    z = l * l;
    m_s[tid] = m;
    inv_s[tid] = inv;
    int chosen[kRouteMaxTopK];
    for (int j = 0; j < k; ++j) {
      const bool noisy = nrow && (j > 0 || k == 1);
      int best = -1;
      T best_v = 0;
      for (int e = 0; e < experts; ++e) {
        bool taken = false;
        for (int i = 0; i < j; ++i) taken = taken || chosen[i] == e;
        if (taken) continue;
        T v = noisy ? row[e] + nrow[e] : row[e];
        if (best < 0 || v > best_v) {
          best = e;
          best_v = v;
        }
      }
      chosen[j] = best;
      expert[t * k + j] = best;
      prob[t * k + j] = exp_of(row[best] - m) * inv;
      atomicAdd(&hist_s[j * experts + best], 1);
    }
  }

  red_s[tid] = z;
  __syncthreads();
  for (int w = kRouteBlock / 2; w > 0; w >>= 1) {
    if (tid < w) red_s[tid] += red_s[tid + w];
    __syncthreads();
  }
  if (tid == 0) z_partial[block] = red_s[0];
  for (int i = tid; i < k * experts; i += kRouteBlock) {
    int j = i / experts, e = i - j * experts;
    hist[(static_cast<int64_t>(j) * gridDim.x + block) * experts + e] = hist_s[i];
  }
  // Softmax sums per expert: `groups` strided groups of tokens each, then the groups in order.
  const int groups = max(1, kRouteBlock / experts);
  for (int c = tid; c < groups * experts; c += kRouteBlock) {
    int g = c / experts, e = c - g * experts;
    T acc = 0;
    for (int i = g; i < count; i += groups) acc += exp_of(logits[(first + i) * experts + e] - m_s[i]) * inv_s[i];
    if (groups == 1) gate_partial[block * experts + e] = acc;
    else part_s[c] = acc;
  }
  if (groups > 1) {
    __syncthreads();
    for (int e = tid; e < experts; e += kRouteBlock) {
      T acc = 0;
      for (int g = 0; g < groups; ++g) acc += part_s[g * experts + e];
      gate_partial[block * experts + e] = acc;
    }
  }
}

// (2) One block: per (level, expert) the exclusive prefix of counts over blocks; per expert the
// level offsets, counters and statistics; the aux and z losses. Shared: T [kScanThreads] reduction
// scratch, T [E] products, int [k][E] totals.
template <typename T>
__global__ void __launch_bounds__(kScanThreads)
    route_scan_kernel(const int* __restrict__ hist, int* __restrict__ prefix, int* __restrict__ level_offset,
                      const T* __restrict__ gate_partial, const T* __restrict__ z_partial, int64_t blocks,
                      int64_t tokens, int experts, int k, int64_t capacity, int64_t* __restrict__ counts,
                      T* __restrict__ stats) {
  extern __shared__ __align__(16) unsigned char smem[];
  T* red_s = reinterpret_cast<T*>(smem);
  T* prod_s = red_s + kScanThreads;
  int* total_s = reinterpret_cast<int*>(prod_s + experts);
  const int tid = threadIdx.x;
  for (int col = tid; col < k * experts; col += kScanThreads) {
    const int j = col / experts, e = col - j * experts;
    const int* h = hist + static_cast<int64_t>(j) * blocks * experts + e;
    int* p = prefix + static_cast<int64_t>(j) * blocks * experts + e;
    int run = 0;
    int64_t b = 0;
    for (; b + 8 <= blocks; b += 8) {  // eight loads in flight
      int c[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) c[i] = h[(b + i) * experts];
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        p[(b + i) * experts] = run;
        run += c[i];
      }
    }
    for (; b < blocks; ++b) {
      int c = h[b * experts];
      p[b * experts] = run;
      run += c;
    }
    total_s[col] = run;
  }
  __syncthreads();
  for (int e = tid; e < experts; e += kScanThreads) {
    int64_t filled = 0, routed = 0;
    for (int j = 0; j < k; ++j) {
      level_offset[j * experts + e] = static_cast<int>(filled);
      const int64_t total = total_s[j * experts + e];
      const int64_t room = capacity - filled > 0 ? capacity - filled : 0;
      filled += total < room ? total : room;
      routed += total;
    }
    counts[e] = routed;
    counts[experts + e] = filled;
    T sum = 0;
    for (int64_t b = 0; b < blocks; ++b) sum += gate_partial[b * experts + e];
    const T mean = sum / static_cast<T>(tokens);
    const T fraction = static_cast<T>(total_s[e]) / static_cast<T>(tokens);
    stats[e] = mean;
    stats[experts + e] = fraction;
    prod_s[e] = mean * fraction;
  }
  T z = 0;
  for (int64_t b = tid; b < blocks; b += kScanThreads) z += z_partial[b];
  red_s[tid] = z;
  __syncthreads();
  for (int w = kScanThreads / 2; w > 0; w >>= 1) {
    if (tid < w) red_s[tid] += red_s[tid + w];
    __syncthreads();
  }
  if (tid == 0) {
    T aux = 0;
    for (int e = 0; e < experts; ++e) aux += prod_s[e];
    stats[2 * experts] = aux * static_cast<T>(experts);
    stats[2 * experts + 1] = red_s[0] / static_cast<T>(tokens);
  }
}

// (3) Slots and weights. A token's position among its expert's level-j choices = the block prefix
// + the choices of earlier warps in the block + its rank among its warp's lanes with that expert.
// Shared: int [kRouteWarps][E] per-warp counts.
template <typename T>
__global__ void __launch_bounds__(kRouteBlock)
    route_slot_kernel(const int64_t* __restrict__ expert, const int* __restrict__ prefix,
                      const int* __restrict__ level_offset, int64_t tokens, int experts, int k, int64_t capacity,
                      int64_t* __restrict__ slot, T* __restrict__ weight) {
  extern __shared__ __align__(16) unsigned char smem[];
  int* warp_count = reinterpret_cast<int*>(smem);
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int64_t block = blockIdx.x, t = block * kRouteBlock + tid;
  const bool active = t < tokens;
  T kept[kRouteMaxTopK];
  T total = 0;
  for (int j = 0; j < k; ++j) {
    for (int i = tid; i < kRouteWarps * experts; i += kRouteBlock) warp_count[i] = 0;
    __syncthreads();
    const int e = active ? static_cast<int>(expert[t * k + j]) : -1;
    const unsigned peers = __match_any_sync(0xffffffffu, e);
    const int rank = __popc(peers & ((1u << lane) - 1u));
    if (active && rank == 0) warp_count[warp * experts + e] = __popc(peers);
    __syncthreads();
    if (active) {
      int64_t pos = prefix[(static_cast<int64_t>(j) * gridDim.x + block) * experts + e] + rank;
      for (int w = 0; w < warp; ++w) pos += warp_count[w * experts + e];
      const int64_t s = level_offset[j * experts + e] + pos;
      const bool keep = s < capacity;
      slot[t * k + j] = keep ? s : -1;
      kept[j] = keep ? weight[t * k + j] : T(0);
      total += kept[j];
    }
    __syncthreads();  // the next level clears warp_count
  }
  if (!active) return;
  if (k == 1) {
    weight[t] = kept[0];
    return;
  }
  const T eps = std::numeric_limits<T>::epsilon();
  const T denom = total < eps ? eps : total;
  for (int j = 0; j < k; ++j) weight[t * k + j] = kept[j] / denom;
}

// Random token selection, one block of kSelectThreads per expert e. A token's key is its priority's bits
// in float order (high 32 bits) and the complement of its index (low 32): distinct keys, larger for higher
// priority and, among equal ones, the lower token. (1) Count the expert's tokens; with more than `capacity`,
// (2) find the capacity-th largest key by a radix select, eight 8-bit digits from the top, each a pass over
// the tokens with a shared histogram; (3) walk the tokens in order, 1024 at a time, and give each kept one
// (key >= that threshold) the next slot by a block-wide prefix count. Every token is written by its
// expert's block only; the result does not depend on thread timing.
constexpr int kSelectThreads = 1024;

__device__ __forceinline__ uint64_t select_key(float priority, int64_t token) {
  uint32_t bits = __float_as_uint(priority);
  bits = bits & 0x80000000u ? ~bits : bits | 0x80000000u;
  return (static_cast<uint64_t>(bits) << 32) | static_cast<uint32_t>(~static_cast<uint32_t>(token));
}

// The block's exclusive prefix count of `flag` in thread order, and the block's total. Shared: int [33].
__device__ __forceinline__ int block_prefix_count(bool flag, int* warp_totals, int& total) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const unsigned ballot = __ballot_sync(0xffffffffu, flag);
  if (lane == 0) warp_totals[warp] = __popc(ballot);
  __syncthreads();
  if (threadIdx.x == 0) {
    int run = 0;
    for (int w = 0; w < kSelectThreads / 32; ++w) {
      const int c = warp_totals[w];
      warp_totals[w] = run;
      run += c;
    }
    warp_totals[kSelectThreads / 32] = run;
  }
  __syncthreads();
  const int before = warp_totals[warp] + __popc(ballot & ((1u << lane) - 1u));
  total = warp_totals[kSelectThreads / 32];
  __syncthreads();  // the next call rewrites warp_totals
  return before;
}

__global__ void __launch_bounds__(kSelectThreads)
    select_kernel(const int64_t* __restrict__ expert, const float* __restrict__ priority, int64_t tokens,
                  int experts, int64_t capacity, int64_t* __restrict__ slot, int64_t* __restrict__ kept) {
  __shared__ unsigned hist[256];
  __shared__ int warp_totals[kSelectThreads / 32 + 1];
  __shared__ uint64_t chosen_prefix;
  __shared__ int64_t still_wanted;
  const int e = blockIdx.x, tid = threadIdx.x;
  auto key_of = [&](int64_t t) { return select_key(priority[t * experts + e], t); };

  int routed = 0, total = 0;
  for (int64_t base = 0; base < tokens; base += kSelectThreads) {
    const int64_t t = base + tid;
    if (e == 0 && t < tokens) check_index(expert[t], experts, "moe_select (expert)");  // one block checks
    block_prefix_count(t < tokens && expert[t] == e, warp_totals, total);
    routed += total;
  }
  uint64_t threshold = 0;  // keys >= threshold are kept
  if (routed > capacity) {
    uint64_t prefix = 0, mask = 0;
    int64_t wanted = capacity;  // the rank (from the top) still to find among keys matching prefix
    for (int shift = 56; shift >= 0; shift -= 8) {
      for (int i = tid; i < 256; i += kSelectThreads) hist[i] = 0;
      __syncthreads();
      for (int64_t base = 0; base < tokens; base += kSelectThreads) {  // whole warps: one add per digit a warp
        const int64_t t = base + tid;
        int digit = 256;  // none
        if (t < tokens && expert[t] == e) {
          const uint64_t k = key_of(t);
          if ((k & mask) == prefix) digit = static_cast<int>((k >> shift) & 0xff);
        }
        const unsigned peers = __match_any_sync(0xffffffffu, digit);
        if (digit < 256 && (tid % 32) == __ffs(peers) - 1) atomicAdd(&hist[digit], static_cast<unsigned>(__popc(peers)));
      }
      __syncthreads();
      if (tid == 0) {
        int64_t above = 0;
        int digit = 255;
        for (; digit > 0 && above + hist[digit] < wanted; --digit) above += hist[digit];
        chosen_prefix = prefix | (static_cast<uint64_t>(digit) << shift);
        still_wanted = wanted - above;
      }
      __syncthreads();
      prefix = chosen_prefix;
      wanted = still_wanted;
      mask |= static_cast<uint64_t>(0xff) << shift;
      __syncthreads();
    }
    threshold = prefix;  // the capacity-th largest key itself
  }
  int64_t next = 0;
  for (int64_t base = 0; base < tokens; base += kSelectThreads) {
    const int64_t t = base + tid;
    const bool mine = t < tokens && expert[t] == e;
    const bool keep = mine && key_of(t) >= threshold;
    const int before = block_prefix_count(keep, warp_totals, total);
    if (mine) slot[t] = keep ? next + before : -1;
    next += total;
  }
  if (tid == 0) kept[e] = next;
}

__global__ void buffer_map_kernel(const int64_t* __restrict__ expert, const int64_t* __restrict__ slot,
                                  int64_t choices, int64_t capacity, int64_t* __restrict__ buffer_choice,
                                  int64_t rows) {
  for (int64_t c = thread_index(); c < choices; c += thread_count()) {
    const int64_t s = slot[c];
    if (s < 0) continue;
    check_index(s, capacity, "moe_buffer_map (slot)");
    const int64_t row = expert[c] * capacity + s;
    check_index(row, rows, "moe_buffer_map");
    buffer_choice[row] = c;
  }
}

template <typename T, typename W, int V>
__global__ void permute_kernel(const T* __restrict__ in, const int64_t* __restrict__ buffer_choice,
                               const W* __restrict__ weight, int64_t rows, int64_t choices, int64_t top_k, int64_t d,
                               T* __restrict__ out) {
  const int64_t packs = d / V, total = rows * packs;
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t r = i / packs, p = i - r * packs;
    const int64_t c = buffer_choice[r];
    Pack<T, V> v;
    if (c < 0) {
#pragma unroll
      for (int q = 0; q < V; ++q) v.v[q] = from_acc<T>(acc_t<T>(0));
    } else {
      check_index(c, choices, "moe_permute");
      v = *reinterpret_cast<const Pack<T, V>*>(in + (c / top_k) * d + p * V);
      if (weight) {
        const acc_t<T> scale = weight[c];
#pragma unroll
        for (int q = 0; q < V; ++q) v.v[q] = from_acc<T>(scale * to_acc(v.v[q]));
      }
    }
    *reinterpret_cast<Pack<T, V>*>(out + r * d + p * V) = v;
  }
}

template <typename T, typename W, int V>
__global__ void unpermute_kernel(const T* __restrict__ in, const int64_t* __restrict__ expert,
                                 const int64_t* __restrict__ slot, const W* __restrict__ weight, int64_t tokens,
                                 int64_t top_k, int64_t capacity, int64_t rows, int64_t d, T* __restrict__ out) {
  using A = acc_t<T>;
  const int64_t packs = d / V, total = tokens * packs;
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t t = i / packs, p = i - t * packs;
    A acc[V];
#pragma unroll
    for (int q = 0; q < V; ++q) acc[q] = 0;
    for (int64_t j = 0; j < top_k; ++j) {
      const int64_t c = t * top_k + j, s = slot[c];
      if (s < 0) continue;
      const int64_t row = expert[c] * capacity + s;
      check_index(row, rows, "moe_unpermute");
      const Pack<T, V> v = *reinterpret_cast<const Pack<T, V>*>(in + row * d + p * V);
      const A scale = weight ? static_cast<A>(weight[c]) : A(1);
#pragma unroll
      for (int q = 0; q < V; ++q) acc[q] += scale * to_acc(v.v[q]);
    }
    Pack<T, V> o;
#pragma unroll
    for (int q = 0; q < V; ++q) o.v[q] = from_acc<T>(acc[q]);
    *reinterpret_cast<Pack<T, V>*>(out + t * d + p * V) = o;
  }
}

// A warp per choice: the dot product of the token's output gradient with the choice's buffer row.
template <typename T, typename W, int V>
__global__ void weight_grad_kernel(const T* __restrict__ grad_out, const T* __restrict__ in,
                                   const int64_t* __restrict__ expert, const int64_t* __restrict__ slot,
                                   int64_t tokens, int64_t top_k, int64_t capacity, int64_t rows, int64_t d,
                                   W* __restrict__ grad_weight) {
  using A = acc_t<T>;
  const int lane = threadIdx.x % 32;
  const int64_t packs = d / V, choices = tokens * top_k;
  // The loop bound is the same for the 32 lanes of a warp, so the shuffles see the whole warp.
  for (int64_t c = thread_index() / 32; c < choices; c += thread_count() / 32) {
    const int64_t s = slot[c];
    A dot = 0;
    if (s >= 0) {
      const int64_t row = expert[c] * capacity + s;
      check_index(row, rows, "moe_unpermute_weight_grad");
      const T* g = grad_out + (c / top_k) * d;
      const T* y = in + row * d;
      for (int64_t p = lane; p < packs; p += 32) {
        const Pack<T, V> gv = *reinterpret_cast<const Pack<T, V>*>(g + p * V);
        const Pack<T, V> yv = *reinterpret_cast<const Pack<T, V>*>(y + p * V);
#pragma unroll
        for (int q = 0; q < V; ++q) dot += to_acc(gv.v[q]) * to_acc(yv.v[q]);
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    if (lane == 0) grad_weight[c] = dot;
  }
}

// Elements per 16-byte pack when every row of `d` elements at `ptrs` allows it, else 1.
template <typename T>
int pack_width(int64_t d, std::initializer_list<const void*> ptrs) {
  constexpr int kWide = 16 / static_cast<int>(sizeof(T));
  if (d % kWide != 0) return 1;
  for (const void* p : ptrs)
    if (!is_aligned(p, 16)) return 1;
  return kWide;
}

}  // namespace

size_t moe_route_scratch_bytes(int64_t tokens, int64_t experts, int64_t top_k, size_t float_size) {
  return route_scratch(tokens, experts, top_k, float_size).total;
}

template <typename T>
cudaError_t moe_route(const T* logits, const T* noise, int64_t tokens, int64_t experts, int64_t top_k,
                      int64_t capacity, int64_t* expert, int64_t* slot, T* weight, int64_t* counts, T* lse, T* stats,
                      void* scratch, cudaStream_t stream) {
  if (tokens < 1 || experts < 1 || experts > kRouteMaxExperts || top_k < 1 || top_k > kRouteMaxTopK ||
      top_k > experts || tokens * top_k > std::numeric_limits<int>::max())
    return cudaErrorInvalidValue;
  const RouteScratch s = route_scratch(tokens, experts, top_k, sizeof(T));
  char* base = static_cast<char*>(scratch);
  int* hist = reinterpret_cast<int*>(base + s.hist);
  int* prefix = reinterpret_cast<int*>(base + s.prefix);
  int* level_offset = reinterpret_cast<int*>(base + s.level_offset);
  T* gate_partial = reinterpret_cast<T*>(base + s.gate_partial);
  T* z_partial = reinterpret_cast<T*>(base + s.z_partial);
  const int e = static_cast<int>(experts), k = static_cast<int>(top_k);
  const unsigned blocks = static_cast<unsigned>(s.blocks);

  const size_t choose_shared = 4 * kRouteBlock * sizeof(T) + static_cast<size_t>(k * e) * sizeof(int);
  route_choose_kernel<T><<<blocks, kRouteBlock, choose_shared, stream>>>(logits, noise, tokens, e, k, expert, weight,
                                                                         lse, hist, gate_partial, z_partial);
  if (cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
  const size_t scan_shared = (kScanThreads + e) * sizeof(T) + static_cast<size_t>(k * e) * sizeof(int);
  route_scan_kernel<T><<<1, kScanThreads, scan_shared, stream>>>(hist, prefix, level_offset, gate_partial, z_partial,
                                                                 s.blocks, tokens, e, k, capacity, counts, stats);
  if (cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
  const size_t slot_shared = static_cast<size_t>(kRouteWarps * e) * sizeof(int);
  route_slot_kernel<T><<<blocks, kRouteBlock, slot_shared, stream>>>(expert, prefix, level_offset, tokens, e, k,
                                                                     capacity, slot, weight);
  return cudaGetLastError();
}

cudaError_t moe_select(const int64_t* expert, const float* priority, int64_t tokens, int64_t experts, int64_t capacity,
                       int64_t* slot, int64_t* kept, cudaStream_t stream) {
  if (experts < 1 || experts > kRouteMaxExperts || tokens < 0 || tokens > std::numeric_limits<int>::max() ||
      capacity < 0)
    return cudaErrorInvalidValue;
  select_kernel<<<static_cast<unsigned>(experts), kSelectThreads, 0, stream>>>(expert, priority, tokens,
                                                                               static_cast<int>(experts), capacity,
                                                                               slot, kept);
  return cudaGetLastError();
}

cudaError_t moe_buffer_map(const int64_t* expert, const int64_t* slot, int64_t choices, int64_t capacity,
                           int64_t* buffer_choice, int64_t rows, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  // All bytes 0xff: -1 in two's complement.
  if (cudaError_t err = cudaMemsetAsync(buffer_choice, 0xff, static_cast<size_t>(rows) * sizeof(int64_t), stream);
      err != cudaSuccess)
    return err;
  if (choices == 0) return cudaSuccess;
  buffer_map_kernel<<<grid_for(choices), kThreads, 0, stream>>>(expert, slot, choices, capacity, buffer_choice, rows);
  return cudaGetLastError();
}

template <typename T, typename W>
cudaError_t moe_permute(const T* in, const int64_t* buffer_choice, const W* weight, int64_t rows, int64_t tokens,
                        int64_t top_k, int64_t d, T* out, cudaStream_t stream) {
  if (rows * d == 0) return cudaSuccess;
  const int64_t choices = tokens * top_k;
  const int v = pack_width<T>(d, {in, out});
  if (v > 1) {
    constexpr int kV = 16 / sizeof(T);
    permute_kernel<T, W, kV><<<grid_for(rows * d / kV), kThreads, 0, stream>>>(in, buffer_choice, weight, rows,
                                                                                choices, top_k, d, out);
  } else {
    permute_kernel<T, W, 1><<<grid_for(rows * d), kThreads, 0, stream>>>(in, buffer_choice, weight, rows, choices,
                                                                          top_k, d, out);
  }
  return cudaGetLastError();
}

template <typename T, typename W>
cudaError_t moe_unpermute(const T* in, const int64_t* expert, const int64_t* slot, const W* weight, int64_t tokens,
                          int64_t top_k, int64_t capacity, int64_t rows, int64_t d, T* out, cudaStream_t stream) {
  if (tokens * d == 0) return cudaSuccess;
  const int v = pack_width<T>(d, {in, out});
  if (v > 1) {
    constexpr int kV = 16 / sizeof(T);
    unpermute_kernel<T, W, kV><<<grid_for(tokens * d / kV), kThreads, 0, stream>>>(
        in, expert, slot, weight, tokens, top_k, capacity, rows, d, out);
  } else {
    unpermute_kernel<T, W, 1><<<grid_for(tokens * d), kThreads, 0, stream>>>(in, expert, slot, weight, tokens, top_k,
                                                                              capacity, rows, d, out);
  }
  return cudaGetLastError();
}

template <typename T, typename W>
cudaError_t moe_unpermute_weight_grad(const T* grad_out, const T* in, const int64_t* expert, const int64_t* slot,
                                      int64_t tokens, int64_t top_k, int64_t capacity, int64_t rows, int64_t d,
                                      W* grad_weight, cudaStream_t stream) {
  const int64_t choices = tokens * top_k;
  if (choices == 0) return cudaSuccess;
  const unsigned grid = grid_for(choices * 32);
  if (pack_width<T>(d, {grad_out, in}) > 1) {
    constexpr int kV = 16 / sizeof(T);
    weight_grad_kernel<T, W, kV><<<grid, kThreads, 0, stream>>>(grad_out, in, expert, slot, tokens, top_k, capacity,
                                                                rows, d, grad_weight);
  } else {
    weight_grad_kernel<T, W, 1><<<grid, kThreads, 0, stream>>>(grad_out, in, expert, slot, tokens, top_k, capacity,
                                                               rows, d, grad_weight);
  }
  return cudaGetLastError();
}

template cudaError_t moe_route<float>(const float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t*,
                                      int64_t*, float*, int64_t*, float*, float*, void*, cudaStream_t);
template cudaError_t moe_route<double>(const double*, const double*, int64_t, int64_t, int64_t, int64_t, int64_t*,
                                       int64_t*, double*, int64_t*, double*, double*, void*, cudaStream_t);

#define MT_INST_MOE_ROWS(T, W)                                                                                    \
  template cudaError_t moe_permute<T, W>(const T*, const int64_t*, const W*, int64_t, int64_t, int64_t, int64_t, T*, \
                                         cudaStream_t);                                                           \
  template cudaError_t moe_unpermute<T, W>(const T*, const int64_t*, const int64_t*, const W*, int64_t, int64_t,    \
                                           int64_t, int64_t, int64_t, T*, cudaStream_t);                          \
  template cudaError_t moe_unpermute_weight_grad<T, W>(const T*, const T*, const int64_t*, const int64_t*, int64_t, \
                                                       int64_t, int64_t, int64_t, int64_t, W*, cudaStream_t);
MT_INST_MOE_ROWS(float, float)
MT_INST_MOE_ROWS(double, double)
MT_INST_MOE_ROWS(__nv_bfloat16, float)
MT_INST_MOE_ROWS(__half, float)

}  // namespace mt::gpu
