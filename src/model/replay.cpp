#include "model/replay.h"

#include <cmath>

#include "pi0/error.h"

namespace pi0 {

namespace {
Tensor input(const SafeTensorsFile& f, const std::string& name, bool required = true) {
  if (const SafeTensorsEntry* e = f.find(name)) return f.tensor(*e);
  if (required) throw Error({.message = "case has no input tensor", .file = f.path(), .tensor = name});
  return {};
}
}  // namespace

ModelInputs inputs_from_case(const SafeTensorsFile& f, const ModelConfig& c) {
  ModelInputs in;
  for (const auto& cam : c.cameras) {
    in.images.push_back(input(f, "image." + cam));
    in.image_masks.push_back(input(f, "image_mask." + cam));
  }
  in.tokens = input(f, "tokens");
  in.token_mask = input(f, "token_mask");
  in.state = input(f, "state", !c.pi05);
  in.noise = input(f, "noise", false);
  return in;
}

std::map<std::string, Tensor> replay_case(const Pi0Model& model, const SafeTensorsFile& f) {
  const ModelConfig& c = model.config();
  ModelInputs in = inputs_from_case(f, c);
  std::map<std::string, Tensor> out;
  SampleOptions opt;
  if (auto it = f.metadata().find("num_steps"); it != f.metadata().end()) {
    try {
      opt.num_steps = std::stoi(it->second);
    } catch (...) {
      throw Error({.message = "metadata num_steps is not an integer", .file = f.path(), .field = "num_steps", .got = it->second});
    }
  }
  opt.observer = [&](const std::string& name, const Tensor& t) { out[name] = t; };
  model.sample_actions(in, opt);
  if (f.find("actions") && f.find("time") && in.noise.defined()) {
    TrainOutputs tr = model.forward_training(in, f.tensor("actions"), f.tensor("time"));
    out["train_velocity"] = tr.velocity;
    out["train_loss"] = tr.loss;
  }
  return out;
}

}  // namespace pi0
