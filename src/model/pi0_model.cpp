#include "model/pi0_model.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

#include "core/finite.h"
#include "core/random.h"
#include "model/embed.h"
#include "model/transformer.h"
#include "model/vision.h"
#include "model/weights.h"
#include "pi0/error.h"
#include "pi0/log.h"

namespace pi0 {

namespace {

// All activations of one call, sized once per batch size and reused by later calls.
struct Workspace {
  int64_t batch = 0;
  int64_t prefix = 0;  // prefix tokens in this call's sequence (cameras masked everywhere dropped)
  int64_t image_rows = 0;  // rows of image_emb this call wrote (kept cameras x batch x patches)
  VisionScratch vision;
  Buf image_emb, prefix_x, prefix_out, suffix_x, suffix_out, cond, state, x_t, vel;
  Buf rtc_target, rtc_weights;  // RTC: the remainder zero-padded to [B·H, A]; prefix weights [H]
  SuffixScratch suffix;
  KVStore kv;
  SequenceLayout layout;
  Stream vlm, expert;
};

Tensor tensor_of(const Mat& m, Shape shape) {
  Tensor t = Tensor::zeros(DType::F32, std::move(shape));
  float* d = t.data_mut<float>();
  for (int64_t r = 0; r < m.rows; ++r) std::memcpy(d + r * m.cols, m.row(r), sizeof(float) * m.cols);
  return t;
}

// The images of the given cameras, one after another: [cams.size() · B, C, H, W].
Tensor stack_images(const std::vector<Tensor>& images, const std::vector<int64_t>& cams) {
  const Tensor& first = images[cams[0]];
  Shape shape = first.shape();
  shape[0] *= static_cast<int64_t>(cams.size());
  Tensor t = Tensor::zeros(DType::F32, shape);
  const int64_t n = first.numel();
  for (size_t i = 0; i < cams.size(); ++i)
    std::memcpy(t.data_mut<float>() + static_cast<int64_t>(i) * n, images[cams[i]].data<float>(), sizeof(float) * n);
  return t;
}

[[noreturn]] void bad_input(const std::string& name, const std::string& msg, const std::string& expected,
                            const std::string& got) {
  throw Error({.message = msg, .tensor = name, .expected = expected, .got = got});
}

void expect_tensor(const Tensor& t, const std::string& name, std::initializer_list<DType> dtypes, const Shape& shape) {
  if (!t.defined() || t.raw() == nullptr) bad_input(name, "input is missing", shape_str(shape), "nothing");
  bool ok = false;
  std::string names;
  for (DType d : dtypes) { ok = ok || t.dtype() == d; names += (names.empty() ? "" : " or ") + std::string(dtype_name(d)); }
  if (!ok) bad_input(name, "input has the wrong dtype", names, dtype_name(t.dtype()));
  if (t.shape() != shape) bad_input(name, "input has the wrong shape", shape_str(shape), shape_str(t.shape()));
}

void expect_finite(const Tensor& t, const std::string& name) {
  if (const int64_t i = first_non_finite(t); i >= 0)
    bad_input(name, "input holds a non-finite value (NaN or inf) at element " + std::to_string(i), "finite values",
              std::to_string(t.get_f32(i)));
}

uint8_t flag(const Tensor& t, int64_t i) { return static_cast<const uint8_t*>(t.raw())[i] ? 1 : 0; }

}  // namespace

struct Pi0Model::Impl {
  Checkpoint ck;
  std::unique_ptr<Backend> backend;
  ModelWeights w;
  uint64_t base_seed = 0;
  mutable std::atomic<uint64_t> calls{0};
  mutable std::mutex pool_mu;
  mutable std::vector<std::unique_ptr<Workspace>> pool;

  const ModelConfig& cfg() const { return ck.config; }

  // A workspace borrowed from the pool for one call; given back when the lease ends, also when
  // the call throws, so an exception never costs the pool a workspace.
  class Lease {
   public:
    Lease(const Impl& owner, std::unique_ptr<Workspace> ws) : owner_(owner), ws_(std::move(ws)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { owner_.release(std::move(ws_)); }
    Workspace& operator*() const { return *ws_; }

   private:
    const Impl& owner_;
    std::unique_ptr<Workspace> ws_;
  };

  Lease lease(int64_t B) const { return Lease(*this, acquire(B)); }

  std::unique_ptr<Workspace> acquire(int64_t B) const {
    {
      std::lock_guard<std::mutex> lk(pool_mu);
      for (auto it = pool.begin(); it != pool.end(); ++it)
        if ((*it)->batch == B) {
          auto ws = std::move(*it);
          pool.erase(it);
          return ws;
        }
    }
    auto ws = std::make_unique<Workspace>();
    ws->batch = B;
    return ws;
  }
  void release(std::unique_ptr<Workspace> ws) const {
    std::lock_guard<std::mutex> lk(pool_mu);
    if (pool.size() < 8) pool.push_back(std::move(ws));
  }

  void validate(const ModelInputs& in, bool need_state) const {
    const ModelConfig& c = cfg();
    if (!in.tokens.defined() || in.tokens.ndim() != 2)
      bad_input("tokens", "input is missing or not 2-D", "[B, " + std::to_string(c.max_token_len) + "]",
                in.tokens.defined() ? shape_str(in.tokens.shape()) : "nothing");
    const int64_t B = in.tokens.dim(0);
    if (B < 1) bad_input("tokens", "batch is empty", "B >= 1", "0");
    expect_tensor(in.tokens, "tokens", {DType::I32}, {B, c.max_token_len});
    expect_tensor(in.token_mask, "token_mask", {DType::U8, DType::BOOL}, {B, c.max_token_len});
    const int32_t* tok = in.tokens.data<int32_t>();
    for (int64_t i = 0; i < B * c.max_token_len; ++i)
      if (tok[i] < 0 || tok[i] >= c.vlm.vocab_size)
        bad_input("tokens", "token id outside the vocabulary", "0 <= id < " + std::to_string(c.vlm.vocab_size),
                  std::to_string(tok[i]));
    if (in.images.size() != c.cameras.size() || in.image_masks.size() != c.cameras.size())
      bad_input("image", "one image and one mask per camera are needed", std::to_string(c.cameras.size()) + " cameras",
                std::to_string(in.images.size()) + " images, " + std::to_string(in.image_masks.size()) + " masks");
    for (size_t k = 0; k < c.cameras.size(); ++k) {
      expect_tensor(in.images[k], "image." + c.cameras[k], {DType::F32},
                    {B, c.image_channels, c.image_height, c.image_width});
      expect_tensor(in.image_masks[k], "image_mask." + c.cameras[k], {DType::U8, DType::BOOL}, {B});
    }
    if (need_state) expect_tensor(in.state, "state", {DType::F32}, {B, c.action_dim});
    if (in.noise.defined() && in.noise.raw())
      expect_tensor(in.noise, "noise", {DType::F32}, {B, c.action_horizon, c.action_dim});
    // A NaN input would come out as NaN actions: refuse it here, naming it.
    for (size_t k = 0; k < c.cameras.size(); ++k) expect_finite(in.images[k], "image." + c.cameras[k]);
    if (need_state) expect_finite(in.state, "state");
    if (in.noise.defined() && in.noise.raw()) expect_finite(in.noise, "noise");
  }

  // Prefix: SigLIP per camera, then the scaled text embedding; fills layout and prefix_x.
  // A camera or a prompt slot masked in every batch row changes nothing valid (its keys are
  // masked and positions skip it), so without an observer its rows are dropped altogether: the
  // camera's tower is not run, and prompt padding (most of π0.5's 200 slots, a third or more of
  // π0's 48) costs nothing in any of the 18 VLM layers.
  void embed_prefix(const ModelInputs& in, Workspace& ws, const Observer& obs) const {
    const ModelConfig& c = cfg();
    const int64_t B = ws.batch, S = c.suffix_len(), D = c.vlm.width, Np = c.tokens_per_image();
    const int64_t L = c.max_token_len;
    Backend& be = *backend;
    std::vector<int64_t> cams;
    for (int64_t k = 0; k < static_cast<int64_t>(c.cameras.size()); ++k) {
      bool any = false;
      for (int64_t b = 0; b < B; ++b) any = any || flag(in.image_masks[k], b);
      if (any || obs) cams.push_back(k);
    }
    std::vector<int64_t> slots;  // prompt slots kept
    for (int64_t t = 0; t < L; ++t) {
      bool any = false;
      for (int64_t b = 0; b < B; ++b) any = any || flag(in.token_mask, b * L + t);
      if (any || obs) slots.push_back(t);
    }
    if (cams.empty() && slots.empty()) slots.push_back(0);  // keep one (masked) key: no empty prefix
    const int64_t ncam = static_cast<int64_t>(cams.size()), nslot = static_cast<int64_t>(slots.size());
    const int64_t P = ncam * Np + nslot;
    ws.prefix = P;
    std::vector<uint8_t> prefix_valid(static_cast<size_t>(B * P));
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t i = 0; i < ncam; ++i)
        for (int64_t n = 0; n < Np; ++n) prefix_valid[b * P + i * Np + n] = flag(in.image_masks[cams[i]], b);
      for (int64_t j = 0; j < nslot; ++j) prefix_valid[b * P + ncam * Np + j] = flag(in.token_mask, b * L + slots[j]);
    }
    build_layout(c, B, P, prefix_valid, ws.layout);
    ws.kv.resize(c.vlm.depth, B, P + S, int64_t{c.vlm.num_kv_heads} * c.vlm.head_dim);

    Mat x = ws.prefix_x.mat(B * P, D);
    // Every kept camera goes through the tower in one pass ([camera, batch] rows): fewer, taller
    // GEMMs and a third of the fork/joins for three cameras (vision stage measured 1–3% faster).
    Mat emb = ws.image_emb.mat(ncam * B * Np, D);
    ws.image_rows = ncam * B * Np;
    if (ncam > 0) {
      const Tensor stacked = ncam == 1 ? in.images[cams[0]] : stack_images(in.images, cams);
      std::function<void(int, const Mat&)> on_layer;
      if (obs)
        on_layer = [&](int l, const Mat& m) {
          for (int64_t i = 0; i < ncam; ++i)
            obs("vision." + c.cameras[cams[i]] + ".layer." + std::to_string(l),
                tensor_of(m.rows_view(i * B * Np, B * Np), {B, Np, m.cols}));
        };
      run_vision(be, c, w.vision, stacked, ws.vision, emb, on_layer);
    }
    for (int64_t i = 0; i < ncam; ++i) {
      const Mat e = emb.rows_view(i * B * Np, B * Np);
      if (obs) obs("image_emb." + c.cameras[cams[i]], tensor_of(e, {B, Np, D}));
      for (int64_t b = 0; b < B; ++b)
        for (int64_t n = 0; n < Np; ++n) std::memcpy(x.row(b * P + i * Np + n), e.row(b * Np + n), sizeof(float) * D);
    }
    const float scale = static_cast<float>(std::sqrt(static_cast<double>(D)));
    const int32_t* tok = in.tokens.data<int32_t>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < nslot; ++j) {
        float* row = x.row(b * P + ncam * Np + j);
        const int64_t base = static_cast<int64_t>(tok[b * L + slots[j]]) * D;
        for (int64_t d = 0; d < D; ++d) row[d] = w.embedding.get_f32(base + d) * scale;
      }
    if (obs) {
      obs("prefix_emb", tensor_of(x, {B, P, D}));
      Tensor pm = Tensor::zeros(DType::U8, {B, P}), pp = Tensor::zeros(DType::I32, {B, P});
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < P; ++i) {
          pm.data_mut<uint8_t>()[b * P + i] = ws.layout.valid[b * (P + S) + i];
          pp.data_mut<int32_t>()[b * P + i] = ws.layout.position[b * (P + S) + i];
        }
      obs("prefix_pad_mask", pm);
      obs("prefix_positions", pp);
    }
  }

  void setup_streams(Workspace& ws) const {
    const ModelConfig& c = cfg();
    const int64_t B = ws.batch, P = ws.prefix, S = c.suffix_len();
    ws.vlm.weights = &w.vlm;
    ws.vlm.config = &c.vlm;
    ws.vlm.tokens = P;
    ws.vlm.offset = 0;
    ws.vlm.x = ws.prefix_x.mat(B * P, c.vlm.width);
    ws.expert.weights = &w.expert;
    ws.expert.config = &c.expert;
    ws.expert.tokens = S;
    ws.expert.offset = P;
    ws.expert.x = ws.suffix_x.mat(B * S, c.expert.width);
    ws.expert.cond = c.pi05 ? ws.cond.mat(B, c.expert.width) : Mat{};
  }

  // The velocity of the last H suffix outputs (the π0 state token is dropped).
  void velocity(Workspace& ws, const Mat& v) const {
    const ModelConfig& c = cfg();
    const int64_t B = ws.batch, S = c.suffix_len(), H = c.action_horizon;
    Mat out = ws.suffix_out.mat(B * S, c.expert.width);
    final_norm(*backend, ws.expert, B, out);
    for (int64_t b = 0; b < B; ++b)
      backend->linear(out.rows_view(b * S + (S - H), H), *w.heads.action_out, v.rows_view(b * H, H));
  }

  Mat state_mat(const ModelInputs& in, Workspace& ws) const {
    const int64_t B = ws.batch, A = cfg().action_dim;
    Mat st = ws.state.mat(B, A);
    if (in.state.defined() && in.state.raw() && in.state.shape() == Shape{B, A})
      std::memcpy(st.data, in.state.data<float>(), sizeof(float) * B * A);
    else
      std::memset(st.data, 0, sizeof(float) * B * A);  // π0.5 ignores the state input
    return st;
  }

  using Clock = std::chrono::steady_clock;
  static double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  }

  // The prefix pass, once per call: vision + text embedding, then the VLM layers, which fill every
  // layer's K/V for the prefix rows of the key sequence (the suffix never writes them).
  void prefix_pass(const ModelInputs& in, Workspace& ws, const Observer& obs, SampleTimings* timings) const {
    const ModelConfig& c = cfg();
    const int64_t B = ws.batch;
    auto t0 = Clock::now();
    embed_prefix(in, ws, obs);
    if (timings) timings->vision_ms = ms_since(t0);
    t0 = Clock::now();
    const int64_t P = ws.prefix;
    setup_streams(ws);
    ws.vlm.skip_last_tail = !obs;  // only the K/V of the last layer matter for sampling
    Stream* streams[] = {&ws.vlm};
    run_transformer(*backend, streams, ws.kv, ws.layout, B, P, c.attention_mask_value, layer_observer(obs, B));
    if (obs) {
      Mat out = ws.prefix_out.mat(B * P, c.vlm.width);
      final_norm(*backend, ws.vlm, B, out);
      obs("prefix_out", tensor_of(out, {B, P, c.vlm.width}));
    }
    if (timings) timings->prefix_ms = ms_since(t0);
  }

  // Per-layer outputs of a stream for the observer (null without one).
  static LayerCallback layer_observer(const Observer& obs, int64_t B) {
    if (!obs) return {};
    return [&obs, B](const Stream& s, int l) {
      obs((s.offset == 0 ? "prefix.layer." : "suffix_t1.layer.") + std::to_string(l),
          tensor_of(s.x, {B, s.tokens, s.x.cols}));
    };
  }

  // x at t = 1: the caller's noise, or standard normal noise from the seed (fresh per call).
  void initial_noise(const ModelInputs& in, const SampleOptions& opt, const Mat& x) const {
    const int64_t n = x.rows * x.cols;
    if (in.noise.defined() && in.noise.raw()) {
      std::memcpy(x.data, in.noise.data<float>(), sizeof(float) * n);
      return;
    }
    const uint64_t seed = opt.seed ? *opt.seed : base_seed + calls.fetch_add(1);
    for (int64_t i = 0; i < n; ++i) x.data[i] = normal_at(seed, 0, static_cast<uint64_t>(i));
  }

  // Euler steps from t = 1 (noise) towards t = 0 (actions) on ws.x_t, against the cached prefix
  // K/V; returns the t of every step. Allocates nothing per step.
  std::vector<float> denoise(const ModelInputs& in, Workspace& ws, int num_steps, const Observer& obs,
                             SampleTimings* timings, const RtcGuidance* rtc) const {
    const ModelConfig& c = cfg();
    const int64_t B = ws.batch, H = c.action_horizon, A = c.action_dim;
    Mat x = ws.x_t.mat(B * H, A), v = ws.vel.mat(B * H, A);
    const Mat state = state_mat(in, ws);
    const float dt = -1.0f / static_cast<float>(num_steps);
    std::vector<float> times, tb(static_cast<size_t>(B));
    times.reserve(static_cast<size_t>(2 * num_steps + 1));
    if (timings) timings->step_ms.reserve(static_cast<size_t>(2 * num_steps + 1));
    // openpi's loop: t decremented in float32 while t >= -dt/2 (exactly num_steps steps).
    float t = 1.0f;
    for (int step = 0; t >= -dt / 2 && step <= 2 * num_steps; ++step) {
      times.push_back(t);
      const auto t0 = Clock::now();
      std::fill(tb.begin(), tb.end(), t);
      velocity_at(ws, state, x, tb.data(), step == 0 ? obs : kNoObserver, v);
      if (first_non_finite(v.data, B * H * A) >= 0) throw non_finite_error(ws, step, t);
      if (rtc) guide(ws, t, rtc->max_guidance_weight, x, v);
      for (int64_t i = 0; i < B * H * A; ++i) x.data[i] += dt * v.data[i];
      t += dt;
      if (timings) timings->step_ms.push_back(ms_since(t0));
    }
    return times;
  }

  // RTC (model/rtc.h): the remainder zero-padded to the chunk and the prefix weights, once per call
  // (the denoise loop then allocates nothing), with LeRobot's clamp of the horizon to the remainder.
  void prepare_rtc(const RtcGuidance& g, Workspace& ws) const {
    const ModelConfig& c = cfg();
    const int64_t B = ws.batch, H = c.action_horizon, A = c.action_dim;
    validate_rtc(g, B, H, A);
    const int64_t n = g.prev_actions.dim(1), a = g.prev_actions.dim(2);
    Mat y = ws.rtc_target.mat(B * H, A);
    std::fill(y.data, y.data + B * H * A, 0.0f);
    const float* src = g.prev_actions.data<float>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < n; ++h) std::copy_n(src + (b * n + h) * a, a, y.row(b * H + h));
    const int horizon = std::min<int>(g.execution_horizon, static_cast<int>(n));
    const std::vector<float> w = rtc_prefix_weights(g.schedule, g.inference_delay, horizon, static_cast<int>(H));
    std::copy(w.begin(), w.end(), ws.rtc_weights.mat(1, H).data);
  }

  // v ← v − w(t)·W ⊙ (Y − (x − t·v)), in place, per element (LeRobot's guided velocity).
  void guide(Workspace& ws, float t, float max_weight, const Mat& x, const Mat& v) const {
    const ModelConfig& c = cfg();
    const int64_t B = ws.batch, H = c.action_horizon, A = c.action_dim;
    const float gw = rtc_guidance_weight(t, max_weight);
    const float* y = ws.rtc_target.data.data();
    const float* w = ws.rtc_weights.data.data();
    for (int64_t r = 0; r < B * H; ++r) {
      const float wr = w[r % H];
      for (int64_t i = r * A; i < (r + 1) * A; ++i) {
        const float x1 = x.data[i] - t * v.data[i];
        v.data[i] -= gw * (wr * (y[i] - x1));
      }
    }
  }

  // One expert pass over the suffix at flow time `t` (per row): v = velocity(x_t). The observer,
  // when given, sees the step's embeddings, every layer and the velocity.
  void velocity_at(Workspace& ws, const Mat& state, const Mat& x, const float* t, const Observer& obs,
                   const Mat& v) const {
    const ModelConfig& c = cfg();
    const int64_t B = ws.batch, S = c.suffix_len(), H = c.action_horizon, A = c.action_dim;
    Mat suffix = ws.suffix_x.mat(B * S, c.expert.width);
    embed_suffix(*backend, c, w.heads, state, x, t, ws.suffix, suffix, ws.expert.cond);
    if (obs) {
      obs("time_emb_t1", tensor_of(ws.suffix.temb.mat(B, c.time_dim), {B, c.time_dim}));
      obs("suffix_emb", tensor_of(suffix, {B, S, c.expert.width}));
      if (c.pi05) obs("adarms_cond_t1", tensor_of(ws.expert.cond, {B, c.expert.width}));
    }
    Stream* streams[] = {&ws.expert};
    run_transformer(*backend, streams, ws.kv, ws.layout, B, ws.prefix + S, c.attention_mask_value,
                    layer_observer(obs, B));
    velocity(ws, v);
    if (obs) obs("velocity_t1", tensor_of(v, {B, H, A}));
  }

  static inline const Observer kNoObserver{};

  // Velocities went NaN/inf (weights are checked at load and inputs on entry, so this is
  // overflow inside the model). Names the first stage whose output is non-finite: no robot may be
  // sent such a chunk, and a user needs to know where to look. Runs only on this failure path.
  Error non_finite_error(Workspace& ws, int step, float t) const {
    const ModelConfig& c = cfg();
    std::string stage;
    const int64_t kv_width = int64_t{c.vlm.num_kv_heads} * c.vlm.head_dim;
    if (first_non_finite(ws.image_emb.data.data(), ws.image_rows * c.vlm.width) >= 0) {
      stage = "the vision tower (SigLIP + projector output)";
    } else {
      for (int l = 0; l < c.vlm.depth && stage.empty(); ++l)
        for (int64_t b = 0; b < ws.batch && stage.empty(); ++b) {
          const int64_t off = b * ws.kv.seq * kv_width, n = ws.prefix * kv_width;
          if (first_non_finite(ws.kv.k[l].data.data() + off, n) >= 0 || first_non_finite(ws.kv.v[l].data.data() + off, n) >= 0)
            stage = "the VLM over the prefix (layer " + std::to_string(l) + " keys/values)";
        }
    }
    if (stage.empty())
      stage = "the action expert (denoising step " + std::to_string(step + 1) + ", t = " + std::to_string(t) + ")";
    return Error({.message = "the model produced non-finite values (NaN or inf); they first appear in " + stage +
                             ". No actions are returned.",
                  .file = ck.dir});
  }
};

Pi0Model::Pi0Model(Checkpoint checkpoint, std::unique_ptr<Backend> backend) : impl_(std::make_unique<Impl>()) {
  impl_->ck = std::move(checkpoint);
  impl_->backend = std::move(backend);
  impl_->w = prepare_weights(impl_->ck, *impl_->backend);
  log_message(LogLevel::Info, impl_->backend->name() + " backend, precision " + impl_->backend->precision_reason());
  // Everything inference reads now lives in memory the model owns: unmap the checkpoint, so that
  // rewriting it in place (retraining, `cp`) cannot mix old and new weights into later replies and
  // truncating it cannot kill the process with SIGBUS. Costs no RSS: the mapped pages were
  // released as each weight was copied or packed.
  impl_->ck.tensors.clear();
  impl_->ck.files.clear();
  impl_->base_seed = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
}

Pi0Model::~Pi0Model() = default;

std::unique_ptr<Pi0Model> Pi0Model::load(const std::string& dir, const std::string& backend, const BackendOptions& options) {
  auto be = make_backend(backend, options);
  // Not prefaulted: weights are read (and their pages released) one tensor at a time, so an F32
  // checkpoint (LeRobot's, 14.5 GB for π0.5) never sits in memory whole next to its converted copy.
  return std::make_unique<Pi0Model>(open_checkpoint(dir, {.populate = false}), std::move(be));
}

const ModelConfig& Pi0Model::config() const { return impl_->cfg(); }
const Backend& Pi0Model::backend() const { return *impl_->backend; }

Tensor Pi0Model::sample_actions(const ModelInputs& in, const SampleOptions& opt) const {
  const Impl& m = *impl_;
  const ModelConfig& c = m.cfg();
  m.validate(in, !c.pi05);
  const int num_steps = opt.num_steps > 0 ? opt.num_steps : c.num_steps;
  const int64_t B = in.batch(), H = c.action_horizon, A = c.action_dim;
  const Impl::Lease lease = m.lease(B);
  Workspace& ws = *lease;
  if (opt.timings) *opt.timings = {};
  if (opt.rtc) m.prepare_rtc(*opt.rtc, ws);  // checked before the expensive prefix pass
  m.prefix_pass(in, ws, opt.observer, opt.timings);
  Mat x = ws.x_t.mat(B * H, A);
  m.initial_noise(in, opt, x);
  const std::vector<float> times = m.denoise(in, ws, num_steps, opt.observer, opt.timings, opt.rtc ? &*opt.rtc : nullptr);
  Tensor actions = tensor_of(x, {B, H, A});
  if (opt.observer) {
    opt.observer("sample_times", Tensor::from_f32(times, {static_cast<int64_t>(times.size())}));
    opt.observer("actions", actions);
  }
  return actions;
}

TrainOutputs Pi0Model::forward_training(const ModelInputs& in, const Tensor& actions, const Tensor& time,
                                        const Observer& obs) const {
  const Impl& m = *impl_;
  const ModelConfig& c = m.cfg();
  m.validate(in, !c.pi05);
  const int64_t B = in.batch(), S = c.suffix_len(), H = c.action_horizon, A = c.action_dim;
  expect_tensor(in.noise, "noise", {DType::F32}, {B, H, A});
  expect_tensor(actions, "actions", {DType::F32}, {B, H, A});
  expect_tensor(time, "time", {DType::F32}, {B});
  const Impl::Lease lease = m.lease(B);
  Workspace& ws = *lease;
  Backend& be = *m.backend;

  m.embed_prefix(in, ws, obs);
  const int64_t P = ws.prefix;
  m.setup_streams(ws);
  ws.vlm.skip_last_tail = true;  // the joint pass needs only the prefix K/V of the last layer
  // x_t = t·noise + (1 − t)·actions, per batch row.
  Mat x = ws.x_t.mat(B * H, A), v = ws.vel.mat(B * H, A);
  const float* nz = in.noise.data<float>();
  const float* ac = actions.data<float>();
  const float* tt = time.data<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < H * A; ++i) {
      const int64_t k = b * H * A + i;
      x.data[k] = tt[b] * nz[k] + (1.f - tt[b]) * ac[k];
    }
  Mat state = m.state_mat(in, ws);
  embed_suffix(be, c, m.w.heads, state, x, tt, ws.suffix, ws.suffix_x.mat(B * S, c.expert.width), ws.expert.cond);
  // One joint pass: prefix and suffix streams in the same attention (the AR groups keep the
  // prefix from seeing the suffix).
  Stream* joint[] = {&ws.vlm, &ws.expert};
  run_transformer(be, joint, ws.kv, ws.layout, B, P + S, c.attention_mask_value);
  m.velocity(ws, v);
  TrainOutputs out;
  out.velocity = tensor_of(v, {B, H, A});
  out.loss = Tensor::zeros(DType::F32, {B, H, A});
  float* loss = out.loss.data_mut<float>();
  for (int64_t i = 0; i < B * H * A; ++i) {
    const float u = nz[i] - ac[i] - v.data[i];
    loss[i] = u * u;
  }
  if (obs) {
    obs("train_velocity", out.velocity);
    obs("train_loss", out.loss);
  }
  return out;
}

}  // namespace pi0
