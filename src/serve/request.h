// One request frame in, one reply frame out: decode the observation, run the policy, add openpi's
// timing fields, encode. No networking here, so it is tested and reused on its own; the server
// runs it on an inference worker, never on a network thread.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/value.h"
#include "serve/msgpack_numpy.h"

namespace pi0::serve {

// The policy as the server sees it: observation in, result dict out ({"actions": ...} at least).
// It may be called from several worker threads at once and must throw on bad input.
using InferFn = std::function<Dict(const Dict&)>;

struct RequestOutcome {
  bool ok = false;
  std::string payload;  // ok: the binary msgpack reply; !ok: the error text for the client
  double infer_ms = 0;  // time inside the policy (0 when decoding failed)
  // !ok only: the error is in our real-time chunking fields (rtc_*), not in anything openpi
  // sends, so the connection stays open for the robot's next observation; every other error
  // closes it (1011) as openpi's server does.
  bool keep_connection = false;
};

// `prev_total_ms`: the connection's previous receive-to-sent cycle, absent for its first request
// (openpi's server_timing.prev_total_ms). Never throws: every failure becomes an error outcome.
RequestOutcome process_request(std::string_view frame, const InferFn& infer, const DecodeLimits& limits,
                               std::optional<double> prev_total_ms);

}  // namespace pi0::serve
