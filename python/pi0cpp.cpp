// pi0cpp: the embedding API (include/pi0/policy.h) as a Python module, with openpi's BasePolicy
// semantics, so a Python robot script can swap openpi's policy for this one in process:
//
//   policy = pi0cpp.Policy("ck", robot="libero")
//   reply = policy.infer({"observation/image": img, ..., "prompt": "pick up the fork"})
//   reply["actions"]  # float64 [H, D]
//
// It is built on the public headers only, like any other embedder. Numpy arrays go in as views
// when they are C-contiguous in a dtype the library has (no copy of camera images, HWC or CHW);
// other layouts are made contiguous first. The GIL is released while the policy runs, so other
// Python threads (another infer, a control loop) keep going. pi0::Error becomes pi0cpp.Error (a
// ValueError) whose message is the one `pi0 infer` prints after "error: ".
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "pi0/log.h"
#include "pi0/policy.h"
#include "pi0/version.h"

namespace py = pybind11;

namespace {

// numpy.generic (numpy scalars such as np.float32(1.5)), looked up once at import. A plain handle
// whose reference is never dropped: a static py::object would be released after the interpreter
// has shut down, and a function-local static initialised under the GIL can deadlock two threads.
py::handle g_numpy_generic;

// The numpy dtype of a library dtype and back; nullopt for dtypes the library has no use for.
std::optional<pi0::DType> dtype_from_numpy(const py::dtype& dt) {
  // Arrays in another byte order are converted (py::array::ensure below) rather than misread.
  const char order = dt.attr("byteorder").cast<std::string>()[0];
  if (order == '>') return std::nullopt;
  const char kind = dt.kind();
  const auto size = dt.itemsize();
  if (kind == 'u' && size == 1) return pi0::DType::U8;
  if (kind == 'b' && size == 1) return pi0::DType::BOOL;
  if (kind == 'f' && size == 4) return pi0::DType::F32;
  if (kind == 'f' && size == 8) return pi0::DType::F64;
  if (kind == 'f' && size == 2) return pi0::DType::F16;
  if (kind == 'i' && size == 4) return pi0::DType::I32;
  if (kind == 'i' && size == 8) return pi0::DType::I64;
  return std::nullopt;
}

const char* numpy_name(pi0::DType t) {
  switch (t) {
    case pi0::DType::U8: return "uint8";
    case pi0::DType::BOOL: return "bool";
    case pi0::DType::F32: return "float32";
    case pi0::DType::F64: return "float64";
    case pi0::DType::F16: return "float16";
    case pi0::DType::I32: return "int32";
    case pi0::DType::I64: return "int64";
    case pi0::DType::BF16: break;  // numpy has no bfloat16: returned as float32
  }
  return "float32";
}

[[noreturn]] void bad_type(const std::string& path, const std::string& what, const std::string& expected) {
  throw pi0::Error(pi0::ErrorInfo{.message = "cannot pass " + what + " to the policy", .field = path,
                                  .expected = expected, .got = what});
}

// A numpy array as a tensor that views its memory. `keep` holds the array until the call returns
// (the tensor itself holds no Python reference: it may be destroyed without the GIL).
pi0::Tensor tensor_from_numpy(py::array a, const std::string& path, std::vector<py::object>& keep) {
  std::optional<pi0::DType> dt = dtype_from_numpy(a.dtype());
  if (!dt) {
    // Big-endian input is converted to native order; anything else has no library dtype.
    const py::dtype native = a.dtype().attr("newbyteorder")("=");
    dt = dtype_from_numpy(native);
    if (!dt)
      bad_type(path, "a numpy array of dtype " + py::str(a.dtype()).cast<std::string>(),
               "uint8, bool, float16/32/64 or int32/64");
    a = a.attr("astype")(native);
  }
  if (!(a.flags() & py::array::c_style)) a = py::array::ensure(a, py::array::c_style);  // the only copy
  pi0::Shape shape(a.shape(), a.shape() + a.ndim());
  keep.push_back(a);
  return pi0::Tensor::view(*dt, std::move(shape), a.data(), nullptr);
}

pi0::Value value_from_python(py::handle obj, const std::string& path, std::vector<py::object>& keep);

std::string key_string(py::handle key, const std::string& path) {
  if (py::isinstance<py::str>(key)) return key.cast<std::string>();
  if (py::isinstance<py::bytes>(key)) return key.cast<std::string>();
  bad_type(path, "a dict key of type " + py::str(py::type::of(key).attr("__name__")).cast<std::string>(), "str keys");
}

pi0::Dict dict_from_python(py::handle obj, const std::string& path, std::vector<py::object>& keep) {
  pi0::Dict out;
  for (auto [k, v] : obj.cast<py::dict>()) {
    std::string key = key_string(k, path);
    const std::string sub = path.empty() ? key : path + "/" + key;
    out[key] = value_from_python(v, sub, keep);
  }
  return out;
}

pi0::Value value_from_python(py::handle obj, const std::string& path, std::vector<py::object>& keep) {
  if (obj.is_none()) return {};
  if (py::isinstance<py::bool_>(obj)) return obj.cast<bool>();
  if (py::isinstance<py::array>(obj)) return tensor_from_numpy(py::reinterpret_borrow<py::array>(obj), path, keep);
  if (py::isinstance(obj, g_numpy_generic)) return value_from_python(obj.attr("item")(), path, keep);  // np.float32(1.5)
  if (py::isinstance<py::int_>(obj)) {
    try {
      return static_cast<int64_t>(obj.cast<int64_t>());
    } catch (const py::cast_error&) {
      bad_type(path, "an integer outside int64", "an int64");
    }
  }
  if (py::isinstance<py::float_>(obj)) return obj.cast<double>();
  if (py::isinstance<py::str>(obj)) return obj.cast<std::string>();
  if (py::isinstance<py::bytes>(obj)) {
    // openpi clients may send the prompt as bytes; the server takes it when it is UTF-8 text.
    try {
      return obj.attr("decode")("utf-8").cast<std::string>();
    } catch (const py::error_already_set&) {
      bad_type(path, "bytes that are not UTF-8 text", "UTF-8 text");
    }
  }
  if (py::isinstance<py::dict>(obj)) return dict_from_python(obj, path, keep);
  if (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)) {
    pi0::List out;
    size_t i = 0;
    for (py::handle item : obj) out.push_back(value_from_python(item, path + "[" + std::to_string(i++) + "]", keep));
    return out;
  }
  bad_type(path, "a " + py::str(py::type::of(obj).attr("__name__")).cast<std::string>(),
           "a numpy array, number, str, bytes, bool, None, list or dict");
}

py::array numpy_from_tensor(const pi0::Tensor& t) {
  const pi0::Tensor& src = t.dtype() == pi0::DType::BF16 ? t.to(pi0::DType::F32) : t;
  const std::vector<py::ssize_t> shape(src.shape().begin(), src.shape().end());
  py::array out(py::dtype(numpy_name(src.dtype())), shape);  // owned by numpy: the reply outlives the tensor
  if (src.nbytes()) std::memcpy(out.mutable_data(), src.raw(), src.nbytes());
  return out;
}

py::object python_from_value(const pi0::Value& v) {
  if (v.is_null()) return py::none();
  if (const bool* b = v.get_if<bool>()) return py::bool_(*b);
  if (const int64_t* i = v.get_if<int64_t>()) return py::int_(*i);
  if (const double* d = v.get_if<double>()) return py::float_(*d);
  if (const std::string* s = v.get_if<std::string>()) return py::str(*s);
  if (const pi0::Tensor* t = v.get_if<pi0::Tensor>()) return numpy_from_tensor(*t);
  if (const pi0::List* l = v.get_if<pi0::List>()) {
    py::list out;
    for (const pi0::Value& x : *l) out.append(python_from_value(x));
    return out;
  }
  py::dict out;
  for (const auto& [k, x] : *v.get_if<pi0::Dict>()) out[py::str(k)] = python_from_value(x);
  return out;
}

py::dict info_dict(const pi0::api::PolicyInfo& i) {
  py::dict d;
  d["variant"] = i.variant;
  d["robot"] = i.robot;
  d["backend"] = i.backend;
  d["precision"] = i.precision;
  d["prompt_format"] = i.prompt_format;
  d["action_horizon"] = i.action_horizon;
  d["action_dim"] = i.action_dim;
  d["model_action_dim"] = i.model_action_dim;
  d["image_size"] = py::make_tuple(i.image_height, i.image_width);
  py::list cams, state;
  for (const auto& c : i.cameras) cams.append(py::dict(py::arg("key") = c.key, py::arg("required") = c.required));
  for (const auto& s : i.state) state.append(py::dict(py::arg("key") = s.key, py::arg("size") = s.size));
  d["cameras"] = cams;
  d["state"] = state;
  return d;
}

}  // namespace

PYBIND11_MODULE(pi0cpp, m) {
  m.doc() = "pi0.cpp: C++ inference for pi0 / pi0.5 policies, with openpi's BasePolicy interface";
  m.attr("__version__") = PI0_VERSION;
  g_numpy_generic = py::object(py::module_::import("numpy").attr("generic")).release();
  py::register_exception<pi0::Error>(m, "Error", PyExc_ValueError);

  m.def(
      "log_to_stderr", [](bool enable) { pi0::set_log_callback(enable ? pi0::log_to_stderr() : nullptr); },
      py::arg("enable") = true,
      "Print the library's notes and warnings (what was loaded, prompt format, truncation) on stderr, "
      "as the pi0 CLI does. Off by default.");

  py::class_<pi0::api::Policy>(m, "Policy",
                               "A loaded policy. infer(obs) -> {'actions': float64 [H, D], 'policy_timing': {...}}, "
                               "as openpi's BasePolicy. Thread-safe; the GIL is released while it runs.")
      .def(py::init([](const std::string& checkpoint, const std::string& robot, const std::string& backend, int threads,
                       const std::string& precision, const std::string& tokenizer, const std::string& norm_stats,
                       const std::string& default_prompt, std::optional<bool> discrete_state_input) {
             pi0::api::PolicyOptions o;
             o.robot = robot;
             o.backend = backend;
             o.threads = threads;
             o.precision = precision;
             o.tokenizer_path = tokenizer;
             o.norm_stats_path = norm_stats;
             o.default_prompt = default_prompt;
             o.discrete_state_input = discrete_state_input;
             py::gil_scoped_release release;  // loading maps and repacks gigabytes
             return pi0::api::Policy::load(checkpoint, o);
           }),
           py::arg("checkpoint"), py::kw_only(), py::arg("robot"), py::arg("backend") = "", py::arg("threads") = 0,
           py::arg("precision") = "auto", py::arg("tokenizer") = "", py::arg("norm_stats") = "",
           py::arg("default_prompt") = "", py::arg("discrete_state_input") = py::none(),
           "Loads CHECKPOINT (a directory with config.json and model.safetensors) for ROBOT (aloha, aloha_sim, "
           "droid, libero or a robot .json). backend: cpu | reference ('' = fastest); precision: auto | bf16 | "
           "f32 | int8; threads > 0 sets the library's process-wide thread count; tokenizer / norm_stats: paths "
           "('' = the checkpoint's). Raises pi0cpp.Error naming what is wrong.")
      .def(
          "infer",
          [](const pi0::api::Policy& p, py::dict obs, std::optional<uint64_t> seed) {
            std::vector<py::object> keep;  // the arrays the observation views, alive until we return
            const pi0::Dict observation = dict_from_python(obs, "", keep);
            pi0::Dict reply;
            {
              py::gil_scoped_release release;
              reply = p.infer(observation, {.seed = seed});
            }
            return python_from_value(pi0::Value(std::move(reply)));
          },
          py::arg("obs"), py::kw_only(), py::arg("seed") = py::none(),
          "Runs the policy on one openpi observation dict: uint8 images [H, W, 3] or [3, H, W] under the robot's "
          "camera keys, the raw state, 'prompt' (str or bytes), optionally 'noise' float32/64 [horizon, model "
          "action dim]. seed: noise seed when obs has no 'noise'. Returns {'actions': float64 [H, D], "
          "'policy_timing': {'infer_ms': float}}.")
      .def_property_readonly("metadata", [](const pi0::api::Policy& p) { return python_from_value(pi0::Value(p.metadata())); },
                             "What openpi's server sends on connect (ALOHA: reset_pose); {} otherwise.")
      .def_property_readonly("info", [](const pi0::api::Policy& p) { return info_dict(p.info()); },
                             "variant, robot, backend, precision, prompt_format, action_horizon, action_dim, model_action_dim, "
                             "image_size, cameras [{key, required}], state [{key, size}].");
}
