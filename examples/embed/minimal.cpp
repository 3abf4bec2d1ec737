// minimal CHECKPOINT: one LIBERO observation through the installed pi0 package.
#include <pi0/policy.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) return std::fprintf(stderr, "usage: %s CHECKPOINT\n", argv[0]), 2;
  auto policy = pi0::api::Policy::load(argv[1], {.robot = "libero"});
  pi0::Dict obs;  // what openpi's LIBERO client sends
  obs["observation/image"] = pi0::Tensor::zeros(pi0::DType::U8, {224, 224, 3});
  obs["observation/wrist_image"] = pi0::Tensor::zeros(pi0::DType::U8, {224, 224, 3});
  obs["observation/state"] = pi0::Tensor::from_f32(std::vector<float>(8, 0.1f), {8});
  obs["prompt"] = "pick up the fork";
  const pi0::Dict reply = policy->infer(obs);
  const pi0::Tensor& a = *reply.at("actions").get_if<pi0::Tensor>();  // F64 [H, 7]
  std::printf("%lld x %lld actions, first %.6f\n", (long long)a.dim(0), (long long)a.dim(1), a.data<double>()[0]);
}
