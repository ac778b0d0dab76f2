// A small layer over cuDNN's backend graph API (cudnn_graph.h): owned descriptors, tensors, the
// pointwise / matmul / reduction / reshape operations, an operation graph finalized into an execution
// plan by the engine heuristics, and execution with a variant pack. A failed call throws GraphError
// naming the call, the descriptor and the attribute, with cuDNN's own last-error text.
#pragma once
#include <cudnn.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mt/core/error.h"

namespace mt::cuda::cudnn {

// cuDNN refused a descriptor, attribute, graph or plan; what() says which and why.
class GraphError : public Error {
 public:
  using Error::Error;
};

// One backend descriptor, destroyed with this object. `what` names it in error messages.
class Descriptor {
 public:
  Descriptor(cudnnBackendDescriptorType_t type, std::string what);
  ~Descriptor();
  Descriptor(Descriptor&& o) noexcept;
  Descriptor& operator=(Descriptor&& o) noexcept;
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;

  cudnnBackendDescriptor_t get() const { return desc_; }
  const std::string& what() const { return what_; }
  // cudnnBackendSetAttribute; `attr_name` is the attribute's spelling for messages (see MT_CUDNN_SET).
  void set(cudnnBackendAttributeName_t attr, const char* attr_name, cudnnBackendAttributeType_t type, int64_t count,
           const void* values);
  // Sets a descriptor-valued attribute to `other` (see MT_CUDNN_SET_DESC).
  void set_descriptor(cudnnBackendAttributeName_t attr, const char* attr_name, const Descriptor& other);
  void finalize();

 private:
  cudnnBackendDescriptor_t desc_ = nullptr;
  std::string what_;
};

// desc.set(CUDNN_ATTR_X, "CUDNN_ATTR_X", ...): the attribute's name spelled once.
#define MT_CUDNN_SET(desc, attr, type, count, values) (desc).set(attr, #attr, type, count, values)
#define MT_CUDNN_SET_DESC(desc, attr, other) (desc).set_descriptor(attr, #attr, other)

// cudnn status -> "CUDNN_STATUS_X (cuDNN's last error text)" for messages.
std::string status_text(cudnnStatus_t st);

enum class TensorKind {
  kDevice,   // a buffer named in the variant pack
  kVirtual,  // an intermediate the fused kernel keeps on chip
  kByValue,  // a scalar passed by host pointer in the variant pack
};

// Dims and strides in elements, outermost first (cuDNN's order).
struct TensorLayout {
  std::vector<int64_t> dims, strides;
};

// A finalized execution plan and everything it refers to (descriptors the plan may point into).
class ExecutionPlan {
 public:
  cudnnBackendDescriptor_t get() const { return plan_.get(); }
  int64_t workspace_bytes() const { return workspace_bytes_; }
  int64_t engine() const { return engine_; }  // cuDNN's global engine index, for messages

 private:
  friend class Graph;
  ExecutionPlan(Descriptor plan, int64_t workspace_bytes, int64_t engine, std::vector<Descriptor> keep_alive)
      : plan_(std::move(plan)), workspace_bytes_(workspace_bytes), engine_(engine), keep_alive_(std::move(keep_alive)) {}
  Descriptor plan_;
  int64_t workspace_bytes_ = 0;
  int64_t engine_ = -1;
  std::vector<Descriptor> keep_alive_;
};

// An operation graph under construction. Tensors are named by uid; every op's tensors must be added first.
// Note [cuDNN compute types]: every op computes in f32 (the pointwise math precision and the matmul and
// reduction compute types), except comparisons, which cuDNN's fused attention expects in boolean.
class Graph {
 public:
  explicit Graph(std::string name) : name_(std::move(name)) {}

  // Adds a tensor under `uid` (unique in the graph); 16-byte aligned.
  void tensor(int64_t uid, const char* name, cudnnDataType_t dtype, const TensorLayout& layout, TensorKind kind);
  // y = mode(x[, b[, t]]); t is BINARY_SELECT's predicate (y = t ? x : b). `axis` for GEN_INDEX.
  void pointwise(const char* name, cudnnPointwiseMode_t mode, int64_t x, int64_t y, int64_t b = -1, int64_t t = -1,
                 cudnnDataType_t math = CUDNN_DATA_FLOAT, int64_t axis = -1);
  // c = a @ b over the leading (batch) dims.
  void matmul(const char* name, int64_t a, int64_t b, int64_t c);
  // y = op(x) over the dims where y has size 1.
  void reduction(const char* name, cudnnReduceTensorOp_t op, int64_t x, int64_t y);
  // y views x's elements with y's dims and strides (a transpose, for the attention backward).
  void reshape(const char* name, int64_t x, int64_t y);

  // Finalizes the operation graph and returns the first plan of the heuristics' list (mode A, then the
  // fallback list) that finalizes; throws GraphError listing what every candidate answered.
  ExecutionPlan build(cudnnHandle_t handle) &&;

  const std::string& name() const { return name_; }

 private:
  const Descriptor& find(int64_t uid, const char* op) const;

  std::string name_;
  std::vector<std::pair<int64_t, Descriptor>> tensors_;
  std::vector<Descriptor> ops_;       // the operations, in order
  std::vector<Descriptor> settings_;  // their pointwise / matmul / reduction descriptors, which they point to
};

// Runs `plan` with the device (or, for by-value tensors, host) pointers of `uids` and a workspace of at
// least plan.workspace_bytes() bytes, on the stream the handle is bound to.
void execute(cudnnHandle_t handle, const ExecutionPlan& plan, const std::vector<int64_t>& uids,
             const std::vector<void*>& pointers, void* workspace, const std::string& what);

}  // namespace mt::cuda::cudnn
