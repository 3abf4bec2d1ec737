#include "model/rtc.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include "pi0/error.h"

namespace pi0 {

namespace {
constexpr RtcSchedule kSchedules[] = {RtcSchedule::Zeros, RtcSchedule::Ones, RtcSchedule::Linear, RtcSchedule::Exp};
}  // namespace

const char* rtc_schedule_name(RtcSchedule s) {
  switch (s) {
    case RtcSchedule::Zeros: return "ZEROS";
    case RtcSchedule::Ones: return "ONES";
    case RtcSchedule::Linear: return "LINEAR";
    case RtcSchedule::Exp: return "EXP";
  }
  return "?";
}

std::optional<RtcSchedule> parse_rtc_schedule(std::string_view name) {
  std::string up(name);
  for (char& ch : up) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  for (RtcSchedule s : kSchedules)
    if (up == rtc_schedule_name(s)) return s;
  return std::nullopt;
}

std::string rtc_schedule_names() {
  std::string out;
  for (RtcSchedule s : kSchedules) out += (out.empty() ? "" : ", ") + std::string(rtc_schedule_name(s));
  return out;
}

std::vector<float> rtc_prefix_weights(RtcSchedule s, int start, int end, int total) {
  total = std::max(total, 0);
  start = std::min(start, end);
  std::vector<float> w(static_cast<size_t>(total), 0.0f);
  if (s == RtcSchedule::Zeros) {
    for (int i = 0; i < std::min(start, total); ++i) w[i] = 1.0f;
    return w;
  }
  if (s == RtcSchedule::Ones) {
    for (int i = 0; i < std::min(std::max(end, 0), total); ++i) w[i] = 1.0f;
    return w;
  }
  // LINEAR / EXP: leading ones over [0, start), a ramp strictly between 1 and 0 over
  // [start, min(end, total)), zeros after.
  const int ones = std::clamp(start, 0, total);
  for (int i = 0; i < ones; ++i) w[i] = 1.0f;
  const int ramp = std::min(end, total) - start;
  if (end > start && ramp > 0)
    for (int k = 0; k < ramp; ++k) {
      double u = 1.0 - static_cast<double>(k + 1) / static_cast<double>(ramp + 1);  // linspace(1, 0, ramp + 2)[1:-1]
      if (s == RtcSchedule::Exp) u = u * std::expm1(u) / (std::exp(1.0) - 1.0);
      w[static_cast<size_t>(start + k)] = static_cast<float>(u);
    }
  return w;
}

float rtc_guidance_weight(float t, float max_weight) {
  const double tau = 1.0 - static_cast<double>(t);
  const double one_minus_sq = (1.0 - tau) * (1.0 - tau);
  if (tau == 0.0) return max_weight;      // c = 1/0: nan_to_num(posinf) gives the maximum
  if (one_minus_sq == 0.0) return 0.0f;   // c = 0 times 1/r² = ∞: NaN, which nan_to_num makes 0
  const double c = (1.0 - tau) / tau;
  const double inv_r2 = (one_minus_sq + tau * tau) / one_minus_sq;
  return static_cast<float>(std::min(c * inv_r2, static_cast<double>(max_weight)));
}

void validate_rtc(const RtcGuidance& g, int64_t batch, int64_t horizon, int64_t action_dim) {
  const Tensor& y = g.prev_actions;
  const std::string want = "F32 [" + std::to_string(batch) + ", n, a] with 1 <= n <= " + std::to_string(horizon) +
                           " and 1 <= a <= " + std::to_string(action_dim);
  auto bad = [&](const std::string& field, const std::string& msg, const std::string& expected, const std::string& got) {
    throw Error(ErrorInfo{.message = "real-time chunking: " + msg, .field = "rtc " + field, .expected = expected, .got = got});
  };
  if (!y.defined() || y.raw() == nullptr) bad("prev_actions", "the previous chunk's remainder is missing", want, "nothing");
  if (y.dtype() != DType::F32 || y.ndim() != 3 || y.dim(0) != batch || y.dim(1) < 1 || y.dim(1) > horizon ||
      y.dim(2) < 1 || y.dim(2) > action_dim)
    bad("prev_actions", "the previous chunk's remainder has the wrong type or shape", want,
        std::string(dtype_name(y.dtype())) + " " + shape_str(y.shape()));
  const float* p = y.data<float>();
  for (int64_t i = 0; i < y.numel(); ++i)
    if (!std::isfinite(p[i]))
      bad("prev_actions", "the previous chunk's remainder is not finite", "finite values", std::to_string(p[i]));
  const int64_t n = y.dim(1);
  if (g.inference_delay < 0 || g.inference_delay > n)
    bad("inference_delay", "the inference delay must lie between 0 and the remainder's length",
        "0 <= d <= " + std::to_string(n), std::to_string(g.inference_delay));
  if (g.execution_horizon < 0)
    bad("execution_horizon", "the execution horizon must not be negative", ">= 0", std::to_string(g.execution_horizon));
  if (!(g.max_guidance_weight > 0.0f) || !std::isfinite(g.max_guidance_weight))
    bad("max_guidance_weight", "the maximum guidance weight must be positive and finite", "> 0",
        std::to_string(g.max_guidance_weight));
}

}  // namespace pi0
