#include "policy/rtc_request.h"

#include <cmath>
#include <limits>

#include "pi0/error.h"

namespace pi0 {

namespace {

[[noreturn]] void bad(const std::string& field, const std::string& msg, const std::string& expected, const std::string& got) {
  throw Error(ErrorInfo{.message = "real-time chunking: " + msg, .field = field, .expected = expected, .got = got});
}

std::string number_str(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

// A float array of any float dtype as [rows, width]; [1, n, w] is one batch row of n.
void from_tensor(const Tensor& t, RtcRequest& r, const std::string& field, const std::string& want) {
  if (!is_float(t.dtype())) bad(field, "the previous actions must be a float array", want, dtype_name(t.dtype()));
  Shape s = t.shape();
  if (s.size() == 3 && s[0] == 1) s.erase(s.begin());
  if (s.size() != 2) bad(field, "the previous actions must be a 2-D array", want, shape_str(t.shape()));
  r.rows = s[0];
  r.width = s[1];
  r.prev_actions.resize(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i)
    r.prev_actions[i] = t.dtype() == DType::F64 ? t.data<double>()[i] : static_cast<double>(t.get_f32(i));
}

// A list of rows of numbers (JSON, Python lists).
void from_list(const List& l, RtcRequest& r, const std::string& field, const std::string& want) {
  r.rows = static_cast<int64_t>(l.size());
  for (size_t h = 0; h < l.size(); ++h) {
    const List* row = l[h].get_if<List>();
    if (!row) bad(field + "[" + std::to_string(h) + "]", "each previous action must be a list of numbers", want, "not a list");
    if (h == 0) r.width = static_cast<int64_t>(row->size());
    if (static_cast<int64_t>(row->size()) != r.width)
      bad(field + "[" + std::to_string(h) + "]", "the previous actions' rows differ in length",
          std::to_string(r.width) + " values", std::to_string(row->size()));
    for (size_t i = 0; i < row->size(); ++i) {
      const Value& e = (*row)[i];
      if (const double* d = e.get_if<double>()) r.prev_actions.push_back(*d);
      else if (const int64_t* k = e.get_if<int64_t>()) r.prev_actions.push_back(static_cast<double>(*k));
      else bad(field + "[" + std::to_string(h) + "][" + std::to_string(i) + "]", "previous actions must be numbers", "number", "not a number");
    }
  }
}

// An int from a msgpack int, a whole float or a numpy integer scalar (a 0-d array here).
int64_t integer(const Value& v, const std::string& field) {
  if (const int64_t* i = v.get_if<int64_t>()) return *i;
  if (const double* d = v.get_if<double>(); d && std::isfinite(*d) && *d == std::floor(*d) && std::fabs(*d) < 1e15)
    return static_cast<int64_t>(*d);
  if (const Tensor* t = v.get_if<Tensor>(); t && t->numel() == 1 && t->ndim() == 0) {
    if (t->dtype() == DType::I64) return t->data<int64_t>()[0];
    if (t->dtype() == DType::I32) return t->data<int32_t>()[0];
  }
  bad(field, "must be an integer", "int", v.is<std::string>() ? "a string" : v.is<double>() ? number_str(*v.get_if<double>()) : "another type");
}

double number(const Value& v, const std::string& field) {
  if (const double* d = v.get_if<double>()) return *d;
  if (const int64_t* i = v.get_if<int64_t>()) return static_cast<double>(*i);
  if (const Tensor* t = v.get_if<Tensor>(); t && t->numel() == 1 && t->ndim() == 0 && t->dtype() != DType::BOOL)
    return t->dtype() == DType::F64 ? t->data<double>()[0] : t->dtype() == DType::I64 ? static_cast<double>(t->data<int64_t>()[0])
                                                                                    : static_cast<double>(t->get_f32(0));
  bad(field, "must be a number", "number", v.is<std::string>() ? "a string" : "another type");
}

const Value* present(const Dict& obs, const char* key) {
  auto it = obs.find(key);
  return it == obs.end() || it->second.is_null() ? nullptr : &it->second;
}

}  // namespace

std::optional<RtcRequest> rtc_request_from(const Dict& obs, int64_t robot_action_dim, int64_t horizon) {
  // A misspelt field would silently give an unguided chunk: every rtc_* key must be one of ours.
  static const char* const kFields[] = {"rtc_prev_actions", "rtc_inference_delay", "rtc_execution_horizon",
                                        "rtc_max_guidance_weight", "rtc_schedule"};
  bool others = false;
  for (auto it = obs.lower_bound("rtc_"); it != obs.end() && it->first.rfind("rtc_", 0) == 0; ++it) {
    bool known = false;
    for (const char* f : kFields) known = known || it->first == f;
    if (!known)
      bad(it->first, "unknown real-time chunking field",
          "rtc_prev_actions, rtc_inference_delay, rtc_execution_horizon, rtc_max_guidance_weight or rtc_schedule", it->first);
    others = others || it->first != "rtc_prev_actions";
  }
  if (obs.find("rtc_prev_actions") == obs.end()) {
    if (others)
      bad("rtc_prev_actions", "real-time chunking fields were given without the previous actions (send None when there are none)",
          "rtc_prev_actions", "nothing");
    return std::nullopt;
  }
  const Value* prev = present(obs, "rtc_prev_actions");
  if (!prev) return std::nullopt;  // None: the first chunk of a run, nothing to continue
  RtcRequest r;
  const std::string field = "rtc_prev_actions";
  const std::string want = "[n, " + std::to_string(robot_action_dim) + "] floats, 1 <= n <= " + std::to_string(horizon);
  if (const Tensor* t = prev->get_if<Tensor>()) from_tensor(*t, r, field, want);
  else if (const List* l = prev->get_if<List>()) from_list(*l, r, field, want);
  else bad(field, "the previous actions must be an array", want, "another type");
  if (r.rows < 1 || r.rows > horizon || r.width != robot_action_dim)
    bad(field, "the previous actions have the wrong shape (the robot's action width; at most one chunk)", want,
        "[" + std::to_string(r.rows) + ", " + std::to_string(r.width) + "]");
  for (size_t i = 0; i < r.prev_actions.size(); ++i)
    if (!std::isfinite(r.prev_actions[i]))
      bad(field + "[" + std::to_string(static_cast<int64_t>(i) / r.width) + "][" +
              std::to_string(static_cast<int64_t>(i) % r.width) + "]",
          "the previous actions are not finite", "finite values", number_str(r.prev_actions[i]));

  RtcGuidance& g = r.guidance;
  const Value* d = present(obs, "rtc_inference_delay");
  if (!d) bad("rtc_inference_delay", "rtc_prev_actions needs the inference delay", "an int between 0 and " + std::to_string(r.rows), "nothing");
  const int64_t delay = integer(*d, "rtc_inference_delay");
  if (delay < 0 || delay > r.rows)
    bad("rtc_inference_delay", "the inference delay must lie between 0 and the number of previous actions",
        "0 <= d <= " + std::to_string(r.rows), std::to_string(delay));
  g.inference_delay = static_cast<int>(delay);
  if (const Value* h = present(obs, "rtc_execution_horizon")) {
    const int64_t v = integer(*h, "rtc_execution_horizon");
    if (v < 0 || v > std::numeric_limits<int>::max())
      bad("rtc_execution_horizon", "the execution horizon must not be negative", ">= 0", std::to_string(v));
    g.execution_horizon = static_cast<int>(v);
  }
  if (const Value* w = present(obs, "rtc_max_guidance_weight")) {
    const double v = number(*w, "rtc_max_guidance_weight");
    if (!(v > 0) || !(v <= std::numeric_limits<float>::max()))
      bad("rtc_max_guidance_weight", "the maximum guidance weight must be positive and finite", "> 0", number_str(v));
    g.max_guidance_weight = static_cast<float>(v);
  }
  if (const Value* s = present(obs, "rtc_schedule")) {
    const std::string* name = s->get_if<std::string>();
    if (!name) bad("rtc_schedule", "the schedule must be a string", rtc_schedule_names(), "another type");
    const auto sched = parse_rtc_schedule(*name);
    if (!sched) bad("rtc_schedule", "unknown schedule", rtc_schedule_names(), *name);
    g.schedule = *sched;
  }
  return r;
}

}  // namespace pi0
