// The cuDNN backend-graph layer of cudnn_graph.h: descriptor ownership, checked attribute calls, graph
// assembly, plan selection from the engine heuristics, and execution.
#include "cudnn_graph.h"

#include <algorithm>
#include <utility>

namespace mt::cuda::cudnn {

std::string status_text(cudnnStatus_t st) {
  char last[4096] = {0};
  cudnnGetLastErrorString(last, sizeof(last));
  std::string s = cudnnGetErrorString(st);
  if (last[0] != '\0') s += str_cat(" (", last, ")");
  return s;
}

namespace {

[[noreturn]] void fail(const std::string& msg) { throw GraphError(msg); }

void check(cudnnStatus_t st, const std::string& call) {
  if (st != CUDNN_STATUS_SUCCESS) fail(str_cat("cuDNN: ", call, " failed: ", status_text(st)));
}

}  // namespace

Descriptor::Descriptor(cudnnBackendDescriptorType_t type, std::string what) : what_(std::move(what)) {
  check(cudnnBackendCreateDescriptor(type, &desc_), "cudnnBackendCreateDescriptor for " + what_);
}

Descriptor::~Descriptor() {
  if (desc_) cudnnBackendDestroyDescriptor(desc_);
}

Descriptor::Descriptor(Descriptor&& o) noexcept : desc_(std::exchange(o.desc_, nullptr)), what_(std::move(o.what_)) {}

Descriptor& Descriptor::operator=(Descriptor&& o) noexcept {
  if (this != &o) {
    if (desc_) cudnnBackendDestroyDescriptor(desc_);
    desc_ = std::exchange(o.desc_, nullptr);
    what_ = std::move(o.what_);
  }
  return *this;
}

void Descriptor::set(cudnnBackendAttributeName_t attr, const char* attr_name, cudnnBackendAttributeType_t type,
                     int64_t count, const void* values) {
  check(cudnnBackendSetAttribute(desc_, attr, type, count, values),
        str_cat("cudnnBackendSetAttribute(", attr_name, ") on ", what_));
}

void Descriptor::set_descriptor(cudnnBackendAttributeName_t attr, const char* attr_name, const Descriptor& other) {
  cudnnBackendDescriptor_t d = other.get();
  set(attr, attr_name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &d);
}

void Descriptor::finalize() { check(cudnnBackendFinalize(desc_), "cudnnBackendFinalize of " + what_); }

void Graph::tensor(int64_t uid, const char* name, cudnnDataType_t dtype, const TensorLayout& layout, TensorKind kind) {
  MT_ASSERT(layout.dims.size() == layout.strides.size());
  for (const auto& [u, d] : tensors_) MT_CHECK(u != uid, "cuDNN graph ", name_, ": uid ", uid, " used twice");
  Descriptor t(CUDNN_BACKEND_TENSOR_DESCRIPTOR, str_cat(name_, " tensor ", name, " (uid ", uid, ")"));
  int64_t alignment = 16;
  bool is_virtual = kind == TensorKind::kVirtual, by_value = kind == TensorKind::kByValue;
  auto n = static_cast<int64_t>(layout.dims.size());
  MT_CUDNN_SET(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dtype);
  MT_CUDNN_SET(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, n, layout.dims.data());
  MT_CUDNN_SET(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, n, layout.strides.data());
  MT_CUDNN_SET(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
  MT_CUDNN_SET(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment);
  MT_CUDNN_SET(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
  if (by_value) MT_CUDNN_SET(t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value);
  t.finalize();
  tensors_.emplace_back(uid, std::move(t));
}

const Descriptor& Graph::find(int64_t uid, const char* op) const {
  for (const auto& [u, d] : tensors_)
    if (u == uid) return d;
  MT_FAIL("cuDNN graph ", name_, ": op ", op, " names uid ", uid, ", which was never added");
}

void Graph::pointwise(const char* name, cudnnPointwiseMode_t mode, int64_t x, int64_t y, int64_t b, int64_t t,
                      cudnnDataType_t math, int64_t axis) {
  std::string what = str_cat(name_, " pointwise ", name);
  Descriptor pw(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, what + " (mode)");
  MT_CUDNN_SET(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
  MT_CUDNN_SET(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &math);
  if (axis >= 0) MT_CUDNN_SET(pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis);
  pw.finalize();
  Descriptor op(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, what);
  MT_CUDNN_SET_DESC(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw);
  MT_CUDNN_SET_DESC(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, find(x, name));
  if (b >= 0) MT_CUDNN_SET_DESC(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, find(b, name));
  if (t >= 0) MT_CUDNN_SET_DESC(op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, find(t, name));
  MT_CUDNN_SET_DESC(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, find(y, name));
  op.finalize();
  settings_.push_back(std::move(pw));
  ops_.push_back(std::move(op));
}

void Graph::matmul(const char* name, int64_t a, int64_t b, int64_t c) {
  std::string what = str_cat(name_, " matmul ", name);
  Descriptor mm(CUDNN_BACKEND_MATMUL_DESCRIPTOR, what + " (compute type)");
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  MT_CUDNN_SET(mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
  mm.finalize();
  Descriptor op(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, what);
  MT_CUDNN_SET_DESC(op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, find(a, name));
  MT_CUDNN_SET_DESC(op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, find(b, name));
  MT_CUDNN_SET_DESC(op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, find(c, name));
  MT_CUDNN_SET_DESC(op, CUDNN_ATTR_OPERATION_MATMUL_DESC, mm);
  op.finalize();
  settings_.push_back(std::move(mm));
  ops_.push_back(std::move(op));
}

void Graph::reduction(const char* name, cudnnReduceTensorOp_t reduce, int64_t x, int64_t y) {
  std::string what = str_cat(name_, " reduction ", name);
  Descriptor red(CUDNN_BACKEND_REDUCTION_DESCRIPTOR, what + " (operator)");
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  MT_CUDNN_SET(red, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &reduce);
  MT_CUDNN_SET(red, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
  red.finalize();
  Descriptor op(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, what);
  MT_CUDNN_SET_DESC(op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, red);
  MT_CUDNN_SET_DESC(op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, find(x, name));
  MT_CUDNN_SET_DESC(op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, find(y, name));
  op.finalize();
  settings_.push_back(std::move(red));
  ops_.push_back(std::move(op));
}

void Graph::reshape(const char* name, int64_t x, int64_t y) {
  Descriptor op(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, str_cat(name_, " reshape ", name));
  MT_CUDNN_SET_DESC(op, CUDNN_ATTR_OPERATION_RESHAPE_XDESC, find(x, name));
  MT_CUDNN_SET_DESC(op, CUDNN_ATTR_OPERATION_RESHAPE_YDESC, find(y, name));
  op.finalize();
  ops_.push_back(std::move(op));
}

namespace {

// The engine configs the heuristics list for `graph` in `mode`, best first (possibly none).
std::vector<Descriptor> engine_configs(const Descriptor& graph, cudnnBackendHeurMode_t mode, const std::string& what) {
  Descriptor heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, what + " engine heuristics (mode " + std::to_string(mode) + ")");
  MT_CUDNN_SET_DESC(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph);
  MT_CUDNN_SET(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
  heur.finalize();
  int64_t count = 0;
  check(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                 nullptr),
        "cudnnBackendGetAttribute(CUDNN_ATTR_ENGINEHEUR_RESULTS count) on " + heur.what());
  std::vector<Descriptor> cfgs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < count; ++i) {
    cfgs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, str_cat(what, " engine config ", i));
    raw.push_back(cfgs.back().get());
  }
  int64_t returned = 0;
  if (count > 0)
    check(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count,
                                   &returned, raw.data()),
          "cudnnBackendGetAttribute(CUDNN_ATTR_ENGINEHEUR_RESULTS) on " + heur.what());
  cfgs.erase(cfgs.begin() + std::min(returned, count), cfgs.end());
  return cfgs;
}

// The global index of the engine behind an engine config, or -1 if cuDNN does not say (it only labels
// messages, so a plan that finalized is not given up for it).
int64_t engine_index(const Descriptor& cfg) {
  Descriptor engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR, cfg.what() + " engine");
  cudnnBackendDescriptor_t e = engine.get();
  int64_t n = 0, index = -1;
  if (cudnnBackendGetAttribute(cfg.get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &e) !=
          CUDNN_STATUS_SUCCESS ||
      cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &index) !=
          CUDNN_STATUS_SUCCESS)
    return -1;
  return index;
}

}  // namespace

ExecutionPlan Graph::build(cudnnHandle_t handle) && {
  Descriptor graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, name_ + " operation graph");
  std::vector<cudnnBackendDescriptor_t> ops;
  for (const Descriptor& d : ops_) ops.push_back(d.get());
  MT_CUDNN_SET(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, static_cast<int64_t>(ops.size()),
               ops.data());
  MT_CUDNN_SET(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
  graph.finalize();

  std::string answers;
  for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    std::vector<Descriptor> cfgs;
    try {
      cfgs = engine_configs(graph, mode, name_);
    } catch (const GraphError& e) {  // one mode failing leaves the other to try
      answers += str_cat("\n  heuristics mode ", mode, ": ", e.what());
      continue;
    }
    if (cfgs.empty()) {
      char last[4096] = {0};
      cudnnGetLastErrorString(last, sizeof(last));
      answers += str_cat("\n  heuristics mode ", mode, ": no engine config", last[0] ? ": " : "", last);
    }
    for (Descriptor& cfg : cfgs) {
      Descriptor plan(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, cfg.what() + " execution plan");
      MT_CUDNN_SET(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
      MT_CUDNN_SET_DESC(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, cfg);
      cudnnStatus_t st = cudnnBackendFinalize(plan.get());
      if (st != CUDNN_STATUS_SUCCESS) {
        answers += str_cat("\n  ", cfg.what(), " (mode ", mode, "): ", status_text(st));
        continue;
      }
      int64_t workspace = 0, n = 0;
      check(cudnnBackendGetAttribute(plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n,
                                     &workspace),
            "cudnnBackendGetAttribute(CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE) on " + plan.what());
      int64_t engine = engine_index(cfg);
      std::vector<Descriptor> keep = std::move(ops_);
      for (Descriptor& d : settings_) keep.push_back(std::move(d));
      for (auto& [uid, t] : tensors_) keep.push_back(std::move(t));
      keep.push_back(std::move(graph));
      keep.push_back(std::move(cfg));
      return ExecutionPlan(std::move(plan), workspace, engine, std::move(keep));
    }
  }
  fail(str_cat("cuDNN: no execution plan for ", name_, " finalizes:", answers,
               "\n  (CUDNN_LOGLEVEL_DBG=2 CUDNN_LOGDEST_DBG=stderr prints each engine's reason)"));
}

void execute(cudnnHandle_t handle, const ExecutionPlan& plan, const std::vector<int64_t>& uids,
             const std::vector<void*>& pointers, void* workspace, const std::string& what) {
  MT_ASSERT(uids.size() == pointers.size());
  Descriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, what + " variant pack");
  auto n = static_cast<int64_t>(uids.size());
  MT_CUDNN_SET(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids.data());
  MT_CUDNN_SET(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, pointers.data());
  MT_CUDNN_SET(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
  pack.finalize();
  check(cudnnBackendExecute(handle, plan.get(), pack.get()), "cudnnBackendExecute of " + what);
}

}  // namespace mt::cuda::cudnn
