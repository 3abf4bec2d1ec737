// libFuzzer target: any bytes as a server request frame, through everything the server does
// before the model: msgpack-numpy decoding (serve/request.cpp's limits), then the policy's input
// transforms (Policy::prepare: robot mapping, normalisation, resize-with-pad, tokenisation) for a
// π0 LIBERO policy and a π0.5 ALOHA policy on the tiny demo checkpoints (written once in
// LLVMFuzzerInitialize), then process_request's reply. Every failure must be a pi0::Error: any
// other exception escapes and libFuzzer reports it (the server would answer with an unhelpful
// "request failed: vector::_M_range_check").
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "model/random_checkpoint.h"
#include "pi0/config.h"
#include "pi0/error.h"
#include "policy/demo_assets.h"
#include "policy/policy.h"
#include "serve/request.h"

namespace {

std::unique_ptr<pi0::Policy> g_libero, g_aloha;

std::unique_ptr<pi0::Policy> make_policy(const std::string& root, const std::string& preset, const std::string& robot) {
  const std::string dir = root + "/" + preset;
  const pi0::ModelConfig cfg = pi0::model_preset(preset);
  pi0::write_random_checkpoint(dir, cfg, {});
  pi0::write_demo_assets(dir, cfg);
  pi0::PolicyOptions po;
  po.robot = robot;
  po.backend = "reference";  // the model is never called here
  return pi0::Policy::load(dir, po);
}

// What the model would receive must be well formed whatever the request was.
void check(const pi0::PreparedObservation& p, const pi0::ModelConfig& c) {
  const pi0::ModelInputs& in = p.inputs;
  if (in.images.size() != c.cameras.size() || in.tokens.numel() != c.max_token_len) std::abort();
  for (const pi0::Tensor& img : in.images)
    for (int64_t i = 0; i < img.numel(); ++i)
      if (!(img.data<float>()[i] >= -1.0f && img.data<float>()[i] <= 1.0f)) std::abort();
  for (int64_t i = 0; i < in.state.numel(); ++i)  // a non-finite state would make NaN actions
    if (!std::isfinite(in.state.data<float>()[i])) std::abort();
  for (int64_t i = 0; i < in.tokens.numel(); ++i)
    if (in.tokens.data<int32_t>()[i] < 0 || in.tokens.data<int32_t>()[i] >= c.vlm.vocab_size) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string root = "/tmp/pi0_fuzz_request_" + std::to_string(::getpid());
  g_libero = make_policy(root, "tiny-pi0", "libero");
  g_aloha = make_policy(root, "tiny-pi05", "aloha");
  std::filesystem::remove_all(root);  // the weights stay mapped; the files are not needed again
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  const pi0::serve::DecodeLimits limits;  // the server's defaults
  pi0::Dict obs;
  try {
    obs = pi0::serve::decode_dict(frame, limits);
  } catch (const pi0::Error&) {
    return 0;
  }
  for (const pi0::Policy* p : {g_libero.get(), g_aloha.get()}) {
    try {
      check(p->prepare(obs), p->config());
    } catch (const pi0::Error&) {
    }
  }
  // The server's whole request path with a stand-in for the model: a request the front end
  // accepts must get a reply frame.
  const pi0::serve::InferFn infer = [](const pi0::Dict& o) {
    const pi0::PreparedObservation p = g_libero->prepare(o);
    return pi0::Dict{{"actions", p.inputs.state}};
  };
  const pi0::serve::RequestOutcome r = pi0::serve::process_request(frame, infer, limits, 1.0);
  if (r.ok && r.payload.empty()) std::abort();
  return 0;
}
