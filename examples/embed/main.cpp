// embed CHECKPOINT ROBOT: load a policy through the installed pi0 package, run it on a synthetic
// observation for that robot and print {"actions": [[...], ...]} as JSON.
#include <pi0/policy.h>

#include <cstdio>

int main(int argc, char** argv) try {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s CHECKPOINT ROBOT\n", argv[0]);
    return 2;
  }
  pi0::api::PolicyOptions options;
  options.robot = argv[2];
  auto policy = pi0::api::Policy::load(argv[1], options);
  const pi0::api::PolicyInfo& info = policy->info();

  pi0::Dict obs;  // what an openpi robot client would send
  for (const pi0::api::CameraInput& cam : info.cameras) {
    pi0::Tensor image = pi0::Tensor::zeros(pi0::DType::U8, {info.image_height, info.image_width, 3});
    uint8_t* px = image.data_mut<uint8_t>();
    for (int64_t i = 0; i < image.numel(); ++i) px[i] = static_cast<uint8_t>(i * 7);
    obs[cam.key] = image;
  }
  for (const pi0::api::StateInput& s : info.state)
    obs[s.key] = pi0::Tensor::from_f32(std::vector<float>(s.size, 0.1f), {s.size});
  obs["prompt"] = "pick up the fork";

  const pi0::Dict reply = policy->infer(obs, {.seed = 0});
  const pi0::Tensor& actions = *reply.at("actions").get_if<pi0::Tensor>();  // F64 [H, D]
  std::printf("{\"actions\": [");
  for (int64_t h = 0; h < actions.dim(0); ++h)
    for (int64_t d = 0; d < actions.dim(1); ++d)
      std::printf("%s%.17g%s", d ? ", " : h ? ", [" : "[", actions.data<double>()[h * actions.dim(1) + d],
                  d + 1 == actions.dim(1) ? "]" : "");
  std::printf("]}\n");
} catch (const pi0::Error& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
