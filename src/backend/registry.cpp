// Backend selection by name. The fast `cpu` backend is the default: users get it without asking.
#include "backend/cpu/cpu_backend.h"
#include "backend/ops.h"
#include "backend/reference/reference_backend.h"
#include "pi0/error.h"

namespace pi0 {

std::vector<std::string> backend_names() { return {"cpu", "reference"}; }

std::string default_backend_name() { return "cpu"; }

std::unique_ptr<Backend> make_backend(const std::string& name, const BackendOptions& options) {
  if (name == "reference") {
    if (options.precision != Precision::Auto && options.precision != Precision::F32)
      throw Error({.message = "reference backend computes in f32 only", .field = "precision", .expected = "auto | f32",
                   .got = precision_name(options.precision)});
    return make_reference_backend();
  }
  if (name == "cpu") return make_cpu_backend(options);
  std::string known;
  for (const auto& n : backend_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error({.message = "unknown backend", .field = "backend", .expected = known, .got = name});
}

}  // namespace pi0
