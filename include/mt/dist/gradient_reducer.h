// GradientReducer: the data-parallel average of many gradients in buckets, started while the backward
// still runs (Note [Overlapped gradient reduction] in gradient_reducer.cpp). Each parameter's gradient
// reports itself ready from its accumulator; a bucket starts its collective (MPI_Iallreduce, or NCCL on a
// communication stream) as soon as all its gradients are ready and every earlier bucket has started.
// With owners (ZeRO-2, Note [Sharded gradients]) each bucket is reduce-scattered instead: a rank keeps
// only the gradients of the parameters it owns.
#pragma once
#include <cstddef>
#include <vector>

#include "mt/core/tensor.h"
#include "mt/dist/communicator.h"
#include "mt/dist/gradient_buckets.h"

namespace mt {

enum class Overlap { kOff, kOn };
// Whether the backward just run is the step's last (its gradients complete the step) or more follow.
enum class Backward { kMore, kLast };

class GradientReducer {
 public:
  // `params` in model order, all to be averaged over `comm`; main_grad_reduce: the wire dtype of half
  // parameters' f32 gradients (f32 or bf16, as all_reduce_gradients). With Overlap::kOff every bucket
  // starts in finish(): the same buckets and collectives, so the same results, none of it hidden.
  // `owners` (empty, or one rank of `comm` per parameter): the gradients are sharded (ZeRO-2), each
  // parameter's average kept only by its owner.
  GradientReducer(std::vector<Tensor> params, const Communicator& comm, DType main_grad_reduce, Overlap overlap,
                  size_t bucket_bytes = kDefaultBucketBytes, std::vector<int> owners = {});
  ~GradientReducer();  // removes the hooks
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Before a backward whose gradients are reduced (the step's last micro-batch's; sharded: every one):
  // from now on a bucket starts once its gradients are in.
  void arm();
  // After that backward: starts the buckets not started yet, in order, and waits for all. Replicated:
  // the averages are written into the gradients (only Backward::kLast). Sharded: the owned sums are
  // accumulated on the side, every gradient of `params` is dropped, and with Backward::kLast the owned
  // parameters get the averages as their gradients. Returns the seconds the host spent waiting for
  // communication here: what the backward did not hide (CUDA: the host does not wait, the compute
  // stream does).
  double finish(Backward backward = Backward::kLast);
  int buckets() const { return static_cast<int>(buckets_.size()); }
  // Buckets started before finish() in the last backward.
  int started_early() const { return started_early_; }
  bool sharded() const { return !owner_.empty(); }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_, in the order they fill the buffer (sharded: by owner)
    DType wire = DType::kF32;
    Tensor flat;
    Tensor mine;               // sharded: this rank's chunk of the reduced bucket
    std::vector<size_t> sent;  // sharded: the parameters whose (dropped) gradients are in flat, in its order
    CommRequest request;
    int ready = 0;
    bool started = false;
    bool done = false;  // its result taken (finish, or a hook that found it complete)
  };
  void on_ready(size_t param);
  void start(Bucket& b);
  void complete(Bucket& b);
  void bound_in_flight();  // ZeRO-2: complete the oldest buckets while too many are in flight

  std::vector<Tensor> params_;
  std::vector<int> owner_;         // per parameter (sharded), else empty
  std::vector<Tensor> owned_sum_;  // sharded: per parameter, the owned gradient summed over ranks and backwards
  std::vector<size_t> bucket_of_;  // per parameter
  std::vector<Bucket> buckets_;    // in the order the backward completes them (the model's order reversed)
  size_t next_ = 0;                // the first bucket not started
  Communicator comm_;
  Overlap overlap_;
  bool armed_ = false;
  int started_early_ = 0;
};

}  // namespace mt
