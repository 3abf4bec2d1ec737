// The real-time chunking fields of an observation (our extension of openpi's protocol; absent,
// nothing changes), read and checked before any model work:
//   rtc_prev_actions         float array [n, robot action dim] (or [1, n, dim], or a list of
//                            rows): the previous chunk's actions not yet executed, as the robot
//                            was sent them. None or absent: no guidance, the other fields unused.
//   rtc_inference_delay      int d, 0 <= d <= n: actions the robot executes while this chunk is
//                            computed (required with rtc_prev_actions)
//   rtc_execution_horizon    int >= 0 (default 10, LeRobot's)
//   rtc_max_guidance_weight  number > 0 (default 10)
//   rtc_schedule             "ZEROS" | "ONES" | "LINEAR" | "EXP" (default LINEAR)
#pragma once
#include <optional>
#include <vector>

#include "core/value.h"
#include "model/rtc.h"

namespace pi0 {

struct RtcRequest {
  std::vector<double> prev_actions;  // [n, width] row-major, robot units
  int64_t rows = 0, width = 0;
  RtcGuidance guidance;  // everything but prev_actions (filled in model space by the policy)
};

// nullopt when the observation asks for no guidance. Throws pi0::Error naming the field for a
// wrong type, shape (width other than `robot_action_dim`, more than `horizon` rows), a non-finite
// value, or an out-of-range number.
std::optional<RtcRequest> rtc_request_from(const Dict& obs, int64_t robot_action_dim, int64_t horizon);

}  // namespace pi0
