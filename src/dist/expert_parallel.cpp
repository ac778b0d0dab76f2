// The autograd all-to-all the MoE dispatcher uses.
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

}  // namespace mt
