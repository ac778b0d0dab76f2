// MoEConfig::validate: field-by-field checks with the offending value in the message.
#include "mt/nn/moe_config.h"

#include "mt/core/error.h"

namespace mt {

void MoEConfig::validate() const {
  MT_CHECK(d_model > 0, "moe: d_model must be positive, got ", d_model);
  MT_CHECK(hidden >= 0, "moe: hidden must be >= 0 (0 = 4 * d_model), got ", hidden);
  MT_CHECK(experts >= 1, "moe.experts must be >= 1, got ", experts);
  MT_CHECK(top_k >= 1 && top_k <= experts, "moe.top_k must be in [1, moe.experts = ", experts, "], got ", top_k);
  MT_CHECK(capacity_factor > 0, "moe.capacity_factor must be positive, got ", capacity_factor);
  MT_CHECK(eval_capacity_factor > 0, "moe.eval_capacity_factor must be positive, got ", eval_capacity_factor);
  MT_CHECK(min_capacity >= 0, "moe.min_capacity must be >= 0, got ", min_capacity);
  MT_CHECK(aux_loss_coef >= 0, "moe.aux_loss_coef must be >= 0, got ", aux_loss_coef);
  MT_CHECK(z_loss_coef >= 0, "moe.z_loss_coef must be >= 0, got ", z_loss_coef);
}

}  // namespace mt
