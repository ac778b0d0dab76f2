// GradientReducer: the data-parallel average of many gradients in buckets, started while the backward
// still runs (Note [Overlapped gradient reduction] in gradient_reducer.cpp). Each parameter's gradient
// reports itself ready from its accumulator; a bucket starts its all-reduce (MPI_Iallreduce, or NCCL on a
// communication stream) as soon as all its gradients are ready and every earlier bucket has started.
#pragma once
#include <cstddef>
#include <vector>

#include "mt/core/tensor.h"
#include "mt/dist/communicator.h"
#include "mt/dist/gradient_buckets.h"

namespace mt {

enum class Overlap { kOff, kOn };

class GradientReducer {
 public:
  // `params` in model order, all to be averaged over `comm`; main_grad_reduce: the wire dtype of half
  // parameters' f32 gradients (f32 or bf16, as all_reduce_gradients). With Overlap::kOff every bucket
  // starts in finish(): the same buckets and collectives, so the same results, none of it hidden.
  GradientReducer(std::vector<Tensor> params, const Communicator& comm, DType main_grad_reduce, Overlap overlap,
                  size_t bucket_bytes = kDefaultBucketBytes);
  ~GradientReducer();  // removes the hooks
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Before the backward whose gradients complete the step (the last micro-batch's): from now on a
  // bucket starts once its gradients are in.
  void arm();
  // After that backward: starts the buckets not started yet, in order, waits for all, and writes the
  // averages into the gradients. Returns the seconds the host spent waiting for communication here: what
  // the backward did not hide (CUDA: the host does not wait, the compute stream does).
  double finish();
  int buckets() const { return static_cast<int>(buckets_.size()); }
  // Buckets started before finish() in the last step.
  int started_early() const { return started_early_; }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_, in the order they fill the buffer
    DType wire = DType::F32;
    Tensor flat;
    CommRequest request;
    int ready = 0;
    bool started = false;
  };
  void on_ready(size_t param);
  void start(Bucket& b);

  std::vector<Tensor> params_;
  std::vector<size_t> bucket_of_;  // per parameter
  std::vector<Bucket> buckets_;    // in the order the backward completes them (the model's order reversed)
  size_t next_ = 0;                // the first bucket not started
  Communicator comm_;
  Overlap overlap_;
  bool armed_ = false;
  int started_early_ = 0;
};

}  // namespace mt
