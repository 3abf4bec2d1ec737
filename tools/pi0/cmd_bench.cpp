// pi0 bench: the full-size model (random bf16 weights unless --checkpoint), time per stage
// (median of several runs), FLOPs actually executed, achieved GFLOP/s, the machine's bf16 GEMM
// peak measured in the same run, and peak RSS.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "backend/counting.h"
#include "backend/cpu/dnnl_matmul.h"
#include "backend/cpu/instruction_peak.h"
#include "cli_util.h"
#include "commands.h"
#include "core/progress.h"
#include "core/random.h"
#include "model/random_checkpoint.h"
#include "model/layout.h"
#include "model/pi0_model.h"
#include "pi0/error.h"
#include "pi0/threads.h"

namespace pi0::cli {

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Best GFLOP/s of the bf16 (or f32) GEMM on π0's shapes, with the weights as stored and packed into
// oneDNN's blocked layout (the fastest kernel, README "GEMM kernels"): the denominator of
// gemm_peak_gflops (fraction_of_peak divides by the instruction peak). A short burst (≈ 1.5 s), in the same run.
double measure_gemm_peak(bool bf16) {
  double best = 0;
  for (auto [M, K, N] : {std::tuple<int64_t, int64_t, int64_t>{816, 2048, 16384}, {768, 1152, 4304}, {51, 1024, 4096}}) {
    std::vector<uint16_t> a16(bf16 ? M * K : 0, 0x3f80), b16(bf16 ? N * K : 0, 0x3c00);
    std::vector<float> a32(bf16 ? 0 : M * K, 1.f), b32(bf16 ? 0 : N * K, 0.5f), c(M * N);
    const void* a_data = bf16 ? static_cast<const void*>(a16.data()) : a32.data();
    const void* b_data = bf16 ? static_cast<const void*>(b16.data()) : b32.data();
    cpu::MatmulSpec s{.M = M, .K = K, .N = N, .lda = K, .b_sk = 1, .b_sn = K, .ldc = N, .bf16 = bf16};
    const auto packed = cpu::pack_weights(b_data, N, K, bf16, M);
    const int reps = M < 128 ? 50 : 3;  // the small shape: enough calls for a stable time
    for (bool use_packed : {false, true}) {
      auto once = [&] {
        if (use_packed) cpu::matmul(s, a_data, *packed, nullptr, c.data());
        else cpu::matmul(s, a_data, b_data, nullptr, c.data());
      };
      once();
      for (int r = 0; r < 3; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < reps; ++i) once();
        double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, reps * 2.0 * M * K * N / dt / 1e9);
      }
    }
  }
  return best;
}

ModelInputs bench_inputs(const ModelConfig& c, int cameras, int tokens) {
  ModelInputs in;
  for (size_t k = 0; k < c.cameras.size(); ++k) {
    Tensor img = Tensor::zeros(DType::F32, {1, c.image_channels, c.image_height, c.image_width});
    for (int64_t i = 0; i < img.numel(); ++i) img.data_mut<float>()[i] = 2.f * static_cast<float>(uniform_at(1, k, i)) - 1.f;
    Tensor m = Tensor::zeros(DType::U8, {1});
    m.data_mut<uint8_t>()[0] = static_cast<int>(k) < cameras;
    in.images.push_back(img);
    in.image_masks.push_back(m);
  }
  in.tokens = Tensor::zeros(DType::I32, {1, c.max_token_len});
  in.token_mask = Tensor::zeros(DType::U8, {1, c.max_token_len});
  for (int t = 0; t < c.max_token_len; ++t) {
    in.tokens.data_mut<int32_t>()[t] = t < tokens ? 2 + (t * 7919) % (c.vlm.vocab_size - 2) : 0;
    in.token_mask.data_mut<uint8_t>()[t] = t < tokens;
  }
  in.state = Tensor::zeros(DType::F32, {1, c.action_dim});
  return in;
}

// Ops by total time, largest first.
std::vector<std::pair<std::string, OpProfile>> sorted_profile(const CountingBackend& c) {
  auto m = c.profile();
  std::vector<std::pair<std::string, OpProfile>> v(m.begin(), m.end());
  std::sort(v.begin(), v.end(), [](const auto& x, const auto& y) { return x.second.seconds > y.second.seconds; });
  return v;
}

struct BenchArgs {
  std::string preset = "pi0", checkpoint, backend = default_backend_name(), cache = "out/bench", precision = "auto";
  int cameras = 3, tokens = -1, runs = 3, steps = 0;
  bool json = false, profile = false;
};

// What one bench run measured (medians over the timed runs), and the model it timed.
struct BenchResult {
  std::unique_ptr<Pi0Model> model;
  const CountingBackend* counter = nullptr;  // owned by the model; its op profile
  std::string dir;
  double load_s = 0, peak = 0, flops = 0;  // peak: of the GEMM instruction the chosen precision runs on
  std::string peak_dtype;
  double gemm_peak = 0;                     // best oneDNN float GEMM burst (bf16 or f32, as the backend)
  double total_ms = 0, vision_ms = 0, prefix_ms = 0, step_ms = 0;
  int tokens = 0, steps = 0;
  uint64_t rss = 0;
  double gflops() const { return flops / (total_ms * 1e6); }
};

// The checkpoint to time: the user's, or a random one of the preset written once into the cache.
std::string bench_checkpoint(const BenchArgs& a) {
  if (!a.checkpoint.empty()) return a.checkpoint;
  const std::string dir = a.cache + "/" + a.preset + "-bf16";
  if (!std::filesystem::exists(dir + "/model.safetensors")) {
    // Say where and how much before writing gigabytes into the working directory.
    const ModelConfig c = model_preset(a.preset);
    uint64_t bytes = 0;
    for (const auto& spec : checkpoint_layout(c)) bytes += 2 * static_cast<uint64_t>(shape_numel(spec.shape));
    std::fprintf(stderr, "bench: writing a random %s checkpoint (bf16, %.1f GB) to %s, reused by later runs "
                         "(--cache DIR puts it elsewhere; --checkpoint DIR times your own)\n",
                 a.preset.c_str(), bytes / 1e9, dir.c_str());
    write_random_checkpoint(dir, model_preset(a.preset), {.dtype = DType::BF16, .seed = 1, .progress = stderr_is_tty()});
  }
  return dir;
}

// One warm-up run (first touch of buffers, oneDNN primitive creation), then `runs` timed ones.
void time_runs(const Pi0Model& model, const ModelInputs& in, const BenchArgs& a, CountingBackend& counter,
               BenchResult& r) {
  SampleOptions opt;
  opt.num_steps = a.steps;
  opt.seed = 1;
  std::vector<double> total, vision, prefix, step;
  Progress bar("bench", static_cast<uint64_t>(a.runs + 1), stderr_is_tty() && !a.json);
  for (int run = 0; run <= a.runs; ++run) {
    SampleTimings tm;
    opt.timings = &tm;
    if (run <= 1) counter.reset();  // the profile sums the timed runs
    auto s0 = std::chrono::steady_clock::now();
    model.sample_actions(in, opt);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s0).count();
    bar.update(static_cast<uint64_t>(run + 1));
    if (run == 0) continue;
    r.flops = counter.flops() / run;
    total.push_back(ms);
    vision.push_back(tm.vision_ms);
    prefix.push_back(tm.prefix_ms);
    step.push_back(median(tm.step_ms));
  }
  bar.finish();
  r.total_ms = median(total);
  r.vision_ms = median(vision);
  r.prefix_ms = median(prefix);
  r.step_ms = median(step);
}

BenchResult run_bench(const BenchArgs& a) {
  BenchResult r;
  r.dir = bench_checkpoint(a);
  auto t0 = std::chrono::steady_clock::now();
  auto counting = std::make_unique<CountingBackend>(make_backend(a.backend, backend_options(a.precision)));
  CountingBackend* counter = counting.get();
  counter->set_profiling(a.profile);
  // Not prefaulted: pages are read and released tensor by tensor (an F32 checkpoint never sits whole in memory).
  r.model = std::make_unique<Pi0Model>(open_checkpoint(r.dir, {.populate = false}), std::move(counting));
  r.counter = counter;
  r.load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const ModelConfig& c = r.model->config();
  if (a.cameras > static_cast<int>(c.cameras.size()))
    throw Error({.message = "more cameras than the model has", .field = "--cameras",
                 .expected = "<= " + std::to_string(c.cameras.size()), .got = std::to_string(a.cameras)});
  if (a.tokens > c.max_token_len)
    throw Error({.message = "more prompt tokens than the model's token window", .field = "--tokens",
                 .expected = "0 .. " + std::to_string(c.max_token_len), .got = std::to_string(a.tokens)});
  r.tokens = a.tokens < 0 ? c.max_token_len : a.tokens;
  r.steps = a.steps > 0 ? a.steps : c.num_steps;
  std::fprintf(stderr, "bench: measuring the GEMM and instruction peaks\n");  // after the argument checks: it takes seconds
  const Precision p = counter->precision();
  r.gemm_peak = measure_gemm_peak(p == Precision::BF16);
  const cpu::InstructionPeak ip = cpu::instruction_peak(p);
  r.peak = ip.gflops > 0 ? ip.gflops : r.gemm_peak;
  r.peak_dtype = ip.gflops > 0 ? ip.dtype : std::string(p == Precision::BF16 ? "bf16" : "f32") + " GEMM";
  time_runs(*r.model, bench_inputs(c, a.cameras, r.tokens), a, *counter, r);
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  r.rss = static_cast<uint64_t>(ru.ru_maxrss) * 1024;
  return r;
}

void print_json(const BenchArgs& a, const BenchResult& r) {
  const ModelConfig& c = r.model->config();
  nlohmann::ordered_json j = {
      {"checkpoint", r.dir}, {"variant", c.variant()}, {"backend", a.backend},
      {"precision", precision_name(r.model->backend().precision())}, {"precision_reason", r.model->backend().precision_reason()},
      {"threads", num_threads()},
      {"cameras", a.cameras}, {"tokens", r.tokens}, {"steps", r.steps}, {"runs", a.runs}, {"load_s", r.load_s},
      {"total_ms", r.total_ms}, {"flops", r.flops}, {"achieved_gflops", r.gflops()}, {"peak_gflops", r.peak},
      {"peak_dtype", r.peak_dtype}, {"gemm_peak_gflops", r.gemm_peak}, {"fraction_of_peak", r.gflops() / r.peak},
      {"peak_rss_bytes", r.rss},
      {"stages_ms", {{"vision", r.vision_ms}, {"prefix", r.prefix_ms}, {"denoise_step", r.step_ms},
                     {"denoise_total", r.step_ms * r.steps}}}};
  if (a.profile) {
    nlohmann::ordered_json ops = nlohmann::ordered_json::array();
    for (const auto& [key, p] : sorted_profile(*r.counter))
      ops.push_back({{"op", key}, {"calls", p.calls / a.runs}, {"ms", 1e3 * p.seconds / a.runs},
                     {"gflops", p.seconds > 0 ? p.flops / p.seconds / 1e9 : 0.0}});
    j["profile"] = ops;
  }
  std::printf("%s\n", j.dump(2).c_str());
}

void print_text(const BenchArgs& a, const BenchResult& r) {
  const ModelConfig& c = r.model->config();
  std::printf("%s, %s backend (%s), %d threads, %d camera(s), %d tokens, %d steps (median of %d runs)\n",
              c.variant().c_str(), a.backend.c_str(), r.model->backend().precision_reason().c_str(), num_threads(), a.cameras,
              r.tokens, r.steps, a.runs);
  std::printf("  load            %9.1f ms\n", r.load_s * 1e3);
  std::printf("  vision          %9.1f ms\n", r.vision_ms);
  std::printf("  prefix          %9.1f ms\n", r.prefix_ms);
  std::printf("  denoise step    %9.1f ms  (x%d)\n", r.step_ms, r.steps);
  std::printf("  total           %9.1f ms\n", r.total_ms);
  std::printf("  work            %9.1f GFLOP, %.1f GFLOP/s achieved\n", r.flops / 1e9, r.gflops());
  std::printf("  GEMM peak       %9.1f GFLOP/s (oneDNN, measured now)\n", r.gemm_peak);
  std::printf("  %-5s peak      %9.1f GFLOP/s (instruction, measured now) -> %.1f%% of peak\n", r.peak_dtype.c_str(),
              r.peak, 100 * r.gflops() / r.peak);
  std::printf("  peak RSS        %9.2f GB\n", r.rss / 1e9);
  if (!a.profile) return;
  std::printf("\n  %-44s %7s %10s %6s %9s\n", "op (rows x in -> out)", "calls", "ms/run", "share", "GFLOP/s");
  for (const auto& [key, p] : sorted_profile(*r.counter)) {
    const double ms = 1e3 * p.seconds / a.runs;
    if (ms < 0.05 * r.total_ms / 100) continue;  // below 0.05%: noise
    std::printf("  %-44s %7lld %10.1f %5.1f%% %9s\n", key.c_str(), static_cast<long long>(p.calls / a.runs), ms,
                100 * ms / r.total_ms, p.flops > 0 ? std::to_string(static_cast<int>(p.flops / p.seconds / 1e9)).c_str() : "");
  }
}

}  // namespace

void add_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Time the full-size model stage by stage (random weights unless --checkpoint)");
  auto a = std::make_shared<BenchArgs>();
  cmd->add_option("--preset", a->preset, "model size to generate (ignored with --checkpoint)")
      ->check(CLI::IsMember(model_preset_names()))->capture_default_str();
  cmd->add_option("--checkpoint", a->checkpoint, "benchmark this checkpoint instead of random weights");
  cmd->add_option("--cameras", a->cameras, "cameras with an image (the rest are masked)")->check(CLI::Range(1, 16))->capture_default_str();
  cmd->add_option("--tokens", a->tokens, "valid prompt tokens, 0 .. max_token_len (default: all)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--runs", a->runs, "timed runs after one warm-up; medians are reported")->check(CLI::Range(1, 100))->capture_default_str();
  cmd->add_option("--steps", a->steps, "denoising steps (default: the config's)")->check(CLI::Range(1, 1000));
  cmd->add_option("--backend", a->backend, "cpu | reference")->capture_default_str();
  add_precision_option(cmd, &a->precision);
  cmd->add_option("--cache", a->cache, "where the random checkpoint is written once and reused")->capture_default_str();
  cmd->add_flag("--json", a->json, "print one JSON object");
  cmd->add_flag("--profile", a->profile, "also time every op, grouped by kind and shape (where the time goes)");
  cmd->callback([a] {
    const BenchResult r = run_bench(*a);
    if (a->json) print_json(*a, r);
    else print_text(*a, r);
  });
}

}  // namespace pi0::cli
