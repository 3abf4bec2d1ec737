// Real-time chunking (RTC; Black, Galliker & Levine 2025, "Real-Time Execution of Action Chunking
// Flow Policies"): while the robot executes the rest of the previous chunk, the next chunk is
// sampled with guidance towards that remainder, so the switch to it does not jump.
//
// This is the correction LeRobot applies (policies/rtc/modeling_rtc.py, RTCProcessor.denoise_step):
// each Euler step, with x̂ = x_t − t·v the clean estimate and Y the remainder zero-padded to [H, A],
//   err = W ⊙ (Y − x̂),   v ← v − w(t)·err,
// W the prefix weights over the chunk (schedule below) and w(t) the guidance weight, clipped to the
// maximum. LeRobot takes the autograd VJP of x̂ with respect to x_t *after* computing v, so its
// correction is exactly err; the Kinetix reference's VJP through the action expert is not done.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pi0/tensor.h"

namespace pi0 {

// How strongly each action of the new chunk is pulled towards the remainder (LeRobot's
// RTCAttentionSchedule). d = inference delay, h = execution horizon (both clamped as LeRobot does):
//   ZEROS: 1 on the first d actions, 0 after;   ONES: 1 on the first h, 0 after;
//   LINEAR: 1 on the first d, then linearly down towards 0 until h, 0 after;
//   EXP: as LINEAR with each ramp value u replaced by u·(e^u − 1)/(e − 1).
enum class RtcSchedule { Zeros, Ones, Linear, Exp };
const char* rtc_schedule_name(RtcSchedule s);  // "ZEROS", "ONES", "LINEAR", "EXP"
// Case-insensitive; nullopt for anything else.
std::optional<RtcSchedule> parse_rtc_schedule(std::string_view name);
std::string rtc_schedule_names();  // "ZEROS, ONES, LINEAR, EXP" (for error messages and --help)

struct RtcGuidance {
  // The previous chunk's actions not yet executed when this observation was taken, in model
  // space (normalised, model action width): F32 [B, n, a] with 1 <= n <= H and a <= A. Shorter
  // or narrower remainders are zero-padded, as LeRobot pads them.
  Tensor prev_actions;
  // d: actions of the remainder the robot executes while this chunk is computed. 0 <= d <= n.
  int inference_delay = 0;
  // h: how far into the new chunk the remainder guides (clamped to n). LeRobot's default.
  int execution_horizon = 10;
  RtcSchedule schedule = RtcSchedule::Linear;  // LeRobot's default
  float max_guidance_weight = 10.0f;           // LeRobot's default; > 0
};

// LeRobot's get_prefix_weights(start = d, end = h, total = H): `total` weights.
std::vector<float> rtc_prefix_weights(RtcSchedule s, int start, int end, int total);
// LeRobot's guidance weight at flow time t (1 = noise, 0 = actions): with τ = 1 − t,
// c = (1 − τ)/τ and 1/r² = ((1 − τ)² + τ²)/(1 − τ)², w = min(c/r², max), where a division by
// zero gives max (t = 1) and 0·∞ gives 0 (t = 0), as torch.nan_to_num does there.
float rtc_guidance_weight(float t, float max_weight);

// Throws pi0::Error naming the field (prev_actions, inference_delay, ...) for anything out of
// range: wrong rank or width, a non-finite value, d < 0 or d > n, h < 0, max weight <= 0.
void validate_rtc(const RtcGuidance& g, int64_t batch, int64_t horizon, int64_t action_dim);

}  // namespace pi0
