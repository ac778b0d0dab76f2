// The autograd all-to-alls the MoE dispatcher uses: flat, and hierarchical as two flat ones.
#include "mt/dist/expert_parallel.h"

#include "mt/graph/node.h"

namespace mt {

Tensor all_to_all(const Tensor& x, const Communicator& group) {
  MT_CHECK(x.dim() >= 1 && x.size(0) % group.size() == 0, "all_to_all: the leading dim of ", x.describe(),
           " must be a multiple of the group size ", group.size());
  Tensor in = x.detach().contiguous();
  Tensor out = Tensor::empty(in.shape(), in.dtype(), in.device());
  group.all_to_all(in, out);
  Communicator g = group;
  record_function("AllToAllBackward", {x}, {out}, [g](const std::vector<Tensor>& grads) {
    Tensor gin = grads[0].contiguous();
    Tensor gout = Tensor::empty(gin.shape(), gin.dtype(), gin.device());
    g.all_to_all(gin, gout);
    return std::vector<Tensor>{gout};
  });
  return out;
}

Tensor hierarchical_all_to_all(const Tensor& x, const Communicator& intra_node, const Communicator& inter_node) {
  const int64_t n = intra_node.size(), m = inter_node.size();
  MT_CHECK(x.dim() >= 1 && x.size(0) % (n * m) == 0, "hierarchical_all_to_all: the leading dim of ", x.describe(),
           " must be a multiple of the group size ", n * m, " (", m, " nodes of ", n, " ranks)");
  // Note [Hierarchical all-to-all]: chunk c of x is bound for group rank c = node * N + local.
  Tensor by_destination = x.reshape({m, n, -1});                     // (M, N, chunk)
  Tensor by_local = by_destination.permute({1, 0, 2}).contiguous();  // (N, M, chunk): chunk j to local rank j
  Tensor gathered = all_to_all(by_local, intra_node);                // (N, M, chunk): [source local][node]
  Tensor by_node = gathered.permute({1, 0, 2}).contiguous();         // (M, N, chunk): chunk k to node k
  return all_to_all(by_node, inter_node).view(x.shape());           // [source node][source local]: by source rank
}

}  // namespace mt
