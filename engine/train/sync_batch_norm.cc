#include "engine/train/sync_batch_norm.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

namespace segqat {
namespace {

struct Context {
  Collectives* comm;
  absl::Status* error;
};

// Sums `t` across ranks, out of place.
at::Tensor Sum(const Context& ctx, const at::Tensor& t) {
  at::Tensor out = t.detach().clone().contiguous();
  absl::Status st = ctx.comm->AllReduceSum(out);
  if (!st.ok()) {
    *ctx.error = st;
    TORCH_CHECK(false, "SyncBatchNorm: ", std::string(st.message()));
  }
  return out;
}

class AllReduceSum : public torch::autograd::Function<AllReduceSum> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& t,
                            Collectives* comm, absl::Status* error) {
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(comm);
    ctx->saved_data["error"] = reinterpret_cast<int64_t>(error);
    return Sum({comm, error}, t);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const Context c{reinterpret_cast<Collectives*>(ctx->saved_data["comm"].toInt()),
                    reinterpret_cast<absl::Status*>(ctx->saved_data["error"].toInt())};
    return {Sum(c, grads[0]), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

models::WorldSum CollectiveWorldSum(Collectives& c, absl::Status* error) {
  return [comm = &c, error](const at::Tensor& t) { return AllReduceSum::apply(t, comm, error); };
}

}  // namespace segqat
