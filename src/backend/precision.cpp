#include "backend/precision.h"

#include <cstdio>

#include "pi0/error.h"

namespace pi0 {

Precision parse_precision(const std::string& text) {
  if (text == "auto") return Precision::Auto;
  if (text == "bf16") return Precision::BF16;
  if (text == "f32") return Precision::F32;
  if (text == "int8") return Precision::Int8;
  throw Error({.message = "unknown precision", .field = "precision", .expected = "auto, bf16, f32, int8", .got = text});
}

std::string precision_name(Precision p) {
  switch (p) {
    case Precision::Auto: return "auto";
    case Precision::BF16: return "bf16";
    case Precision::F32: return "f32";
    case Precision::Int8: return "int8";
  }
  return "?";
}

PrecisionChoice choose_precision(const ProbeResult& probe) {
  if (!probe.has_bf16) return {Precision::F32, "auto: f32 (no bf16 matmul on this CPU)"};
  const bool f32 = probe.f32_gflops > 1.05 * probe.bf16_gflops;
  char buf[160];
  std::snprintf(buf, sizeof buf, "auto: %s (probe: f32 %.0f GFLOP/s vs bf16 %.0f GFLOP/s)", f32 ? "f32" : "bf16",
                probe.f32_gflops, probe.bf16_gflops);
  return {f32 ? Precision::F32 : Precision::BF16, buf};
}

}  // namespace pi0
