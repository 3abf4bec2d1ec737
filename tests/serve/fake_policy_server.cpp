// The policy server with a fake, deterministic policy, for the protocol tests
// (tests/serve/test_serve_protocol.py). It checks its input like a LIBERO policy would and
// computes actions from every input, so a reply proves which request it answers:
//   actions[i][j] = 0.5·state[j] + 1e-6·sum(image) + 0.01·len(prompt) + 0.001·i + z[i][j]
// with z = noise[i][j] when the request carries `noise` (F32 [10, >=7]) and fresh random numbers
// otherwise, as the real sampler draws fresh noise.
//   --delay-ms N   each call sleeps N ms (a slow model)
//   --gate PATH    while PATH exists, calls wait (≤ 60 s) after creating PATH.running: lets a
//                  test hold a request in flight deterministically
#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "pi0/error.h"
#include "pi0/log.h"
#include "serve/server.h"

namespace {

constexpr int kH = 10, kD = 7;

const pi0::Tensor& need_tensor(const pi0::Dict& obs, const std::string& key) {
  auto it = obs.find(key);
  if (it == obs.end()) {
    // Quotes the client's keys back, as the real policy's errors do (the log must escape them).
    std::string have;
    for (const auto& [k, v] : obs) have += (have.empty() ? "" : ", ") + k;
    throw pi0::Error(pi0::ErrorInfo{.message = "missing key", .field = key, .got = "keys: " + have});
  }
  const pi0::Tensor* t = it->second.get_if<pi0::Tensor>();
  if (!t) throw pi0::Error(pi0::ErrorInfo{"must be a numpy array", "", "", key});
  return *t;
}

pi0::Dict fake_infer(const pi0::Dict& obs, int delay_ms, const std::string& gate) {
  const auto t0 = std::chrono::steady_clock::now();
  if (!gate.empty() && std::filesystem::exists(gate)) {
    std::ofstream(gate + ".running") << "1";
    for (int i = 0; i < 12000 && std::filesystem::exists(gate); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const pi0::Tensor& state = need_tensor(obs, "observation/state");
  if (!pi0::is_float(state.dtype()) || state.ndim() != 1 || state.dim(0) != 8)
    throw pi0::Error(pi0::ErrorInfo{"wrong state", "", "", "observation/state", "float [8]",
                                    std::string(pi0::dtype_name(state.dtype())) + " " + pi0::shape_str(state.shape())});
  const pi0::Tensor& image = need_tensor(obs, "observation/image");
  if (image.dtype() != pi0::DType::U8 || image.shape() != pi0::Shape{224, 224, 3})
    throw pi0::Error(pi0::ErrorInfo{"wrong image", "", "", "observation/image", "U8 [224, 224, 3]",
                                    std::string(pi0::dtype_name(image.dtype())) + " " + pi0::shape_str(image.shape())});
  std::string prompt;
  if (auto it = obs.find("prompt"); it != obs.end()) {
    if (!it->second.is<std::string>()) throw pi0::Error("'prompt' must be a str");
    prompt = *it->second.get_if<std::string>();
  }
  if (prompt == "raise std::runtime_error") throw std::runtime_error("fake policy: a non-pi0 exception");
  const pi0::Tensor* noise = nullptr;
  if (auto it = obs.find("noise"); it != obs.end()) {
    noise = it->second.get_if<pi0::Tensor>();
    if (!noise || noise->dtype() != pi0::DType::F32 || noise->ndim() != 2 || noise->dim(0) != kH || noise->dim(1) < kD)
      throw pi0::Error(pi0::ErrorInfo{"wrong noise", "", "", "noise", "F32 [10, >=7]"});
  }
  double pix = 0;
  for (int64_t i = 0; i < image.numel(); ++i) pix += image.data<uint8_t>()[i];
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::normal_distribution<float> normal;
  pi0::Tensor actions = pi0::Tensor::zeros(pi0::DType::F64, {kH, kD});
  double* a = actions.data_mut<double>();
  for (int i = 0; i < kH; ++i)
    for (int j = 0; j < kD; ++j) {
      double z = noise ? noise->data<float>()[i * noise->dim(1) + j] : normal(rng);
      a[i * kD + j] = 0.5 * state.get_f32(j) + 1e-6 * pix + 0.01 * double(prompt.size()) + 0.001 * i + z;
    }
  if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return pi0::Dict{{"actions", actions}, {"policy_timing", pi0::Dict{{"infer_ms", ms}}}};
}

}  // namespace

int main(int argc, char** argv) {
  pi0::set_log_callback(pi0::log_to_stderr());  // the fault tests read the server's log lines
  CLI::App app{"pi0 policy server with a fake policy (tests only)"};
  pi0::serve::ServerOptions opt;
  opt.model_info = {{"checkpoint", "fake"}, {"variant", "fake \"policy\""}};  // quoting is escaped
  opt.host = "127.0.0.1";
  opt.port = 0;
  opt.handle_signals = true;
  int delay_ms = 0;
  std::string gate;
  app.add_option("--host", opt.host);
  app.add_option("--port", opt.port);
  app.add_option("--max-message-bytes", opt.max_message_bytes);
  app.add_option("--max-queue", opt.max_queue);
  app.add_option("--max-connections", opt.max_connections);
  app.add_option("--workers", opt.workers);
  app.add_option("--io-threads", opt.io_threads);
  app.add_option("--shutdown-timeout", opt.shutdown_timeout_s);
  app.add_option("--handshake-timeout", opt.handshake_timeout_s);
  app.add_option("--idle-timeout", opt.idle_timeout_s);
  app.add_option("--message-timeout", opt.message_timeout_s);
  app.add_option("--max-pipelined", opt.max_pipelined);
  app.add_option("--delay-ms", delay_ms);
  app.add_option("--gate", gate);
  CLI11_PARSE(app, argc, argv);
  try {
    pi0::Dict meta{{"robot", "fake"}, {"action_horizon", kH}, {"action_dim", kD},
                   {"reset_pose", pi0::List{0.0, -1.5, 1.5, 0.0, 0.0, 0.0}}};
    pi0::serve::Server server(opt, [=](const pi0::Dict& obs) { return fake_infer(obs, delay_ms, gate); }, meta);
    std::printf("listening on %s\n", server.url().c_str());  // as pi0 serve
    std::fflush(stdout);
    server.run();
    std::fprintf(stderr, "fake_policy_server: clean exit\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
