#include "serve/request.h"

#include <chrono>
#include <exception>
#include <new>

#include "pi0/error.h"

namespace pi0::serve {

RequestOutcome process_request(std::string_view frame, const InferFn& infer, const DecodeLimits& limits,
                               std::optional<double> prev_total_ms) {
  RequestOutcome r;
  Dict obs;
  try {
    obs = decode_dict(frame, limits);
  } catch (const std::exception& e) {
    r.payload = std::string("invalid request: ") + e.what();
    return r;
  }
  try {
    const auto t0 = std::chrono::steady_clock::now();
    Dict out = infer(obs);
    r.infer_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!out.count("actions")) throw Error("the policy returned no 'actions'");
    Dict timing{{"infer_ms", r.infer_ms}};
    if (prev_total_ms) timing["prev_total_ms"] = *prev_total_ms;
    out["server_timing"] = std::move(timing);
    // openpi's Policy reports its own model time; a policy that does not gets the wall time.
    if (!out.count("policy_timing")) out["policy_timing"] = Dict{{"infer_ms", r.infer_ms}};
    r.payload = encode(out);
    r.ok = true;
  } catch (const Error& e) {
    r.payload = std::string("request failed: ") + e.what();
    r.keep_connection = e.info().field.rfind("rtc_", 0) == 0;
  } catch (const std::bad_alloc&) {
    r.payload = "request failed: out of memory";
  } catch (const std::exception& e) {
    r.payload = std::string("request failed: ") + e.what();
  }
  return r;
}

}  // namespace pi0::serve
