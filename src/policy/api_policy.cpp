// pi0::api::Policy (include/pi0/policy.h): the embedding API over the library's pi0::Policy. It
// only translates options and describes the loaded policy; the pipeline itself is policy.cpp's,
// so the CLI, the server and embedders run the same code.
#include "pi0/policy.h"

#include "backend/precision.h"
#include "pi0/threads.h"
#include "policy/policy.h"

namespace pi0::api {

struct Policy::Impl {
  std::unique_ptr<pi0::Policy> policy;
  PolicyInfo info;
};

Policy::Policy() : impl_(std::make_unique<Impl>()) {}
Policy::~Policy() = default;

std::unique_ptr<Policy> Policy::load(const std::string& checkpoint_dir, const PolicyOptions& o) {
  if (o.threads < 0)
    throw Error(ErrorInfo{.message = "threads must not be negative", .field = "threads",
                          .expected = ">= 0 (0: leave the thread team as it is)", .got = std::to_string(o.threads)});
  // Parsed before anything is loaded, so a misspelt precision is reported at once.
  const Precision precision = parse_precision(o.precision);
  if (o.threads > 0) set_num_threads(o.threads);
  pi0::PolicyOptions po;
  po.robot = o.robot;
  po.tokenizer_path = o.tokenizer_path;
  po.norm_stats_path = o.norm_stats_path;
  po.default_prompt = o.default_prompt;
  po.backend = o.backend;
  po.discrete_state_input = o.discrete_state_input;
  po.precision = precision;

  std::unique_ptr<Policy> p(new Policy());
  p->impl_->policy = pi0::Policy::load(checkpoint_dir, po);
  const pi0::Policy& in = *p->impl_->policy;
  const ModelConfig& c = in.config();
  const RobotConfig& r = in.robot();
  PolicyInfo& info = p->impl_->info;
  info.variant = c.variant();
  info.robot = r.name;
  info.backend = in.model().backend().name();
  info.precision = precision_name(in.model().backend().precision());
  info.prompt_format = in.prompt_format().describe();
  info.action_horizon = c.action_horizon;
  info.action_dim = r.action_dim;
  info.model_action_dim = c.action_dim;
  info.image_height = c.image_height;
  info.image_width = c.image_width;
  for (const RobotCamera& cam : r.cameras) info.cameras.push_back({cam.obs_key, cam.required});
  for (const RobotStatePart& s : r.state) info.state.push_back({s.obs_key, s.size});
  return p;
}

Dict Policy::infer(const Dict& observation) const { return impl_->policy->infer(observation); }

Dict Policy::infer(const Dict& observation, const InferOptions& options) const {
  pi0::InferOptions io;
  io.seed = options.seed;
  return impl_->policy->infer(observation, io);
}

Dict Policy::metadata() const { return impl_->policy->metadata(); }

const PolicyInfo& Policy::info() const { return impl_->info; }

}  // namespace pi0::api
