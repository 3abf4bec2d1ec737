#include "pi0/tensor.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "pi0/error.h"

namespace pi0 {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: case DType::I32: return 4;
    case DType::BF16: case DType::F16: return 2;
    case DType::I64: case DType::F64: return 8;
    case DType::U8: case DType::BOOL: return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::F64: return "F64";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U8: return "U8";
    case DType::BOOL: return "BOOL";
  }
  return "?";
}

std::optional<DType> dtype_from_name(std::string_view n) {
  for (DType t : {DType::F32, DType::BF16, DType::F16, DType::F64, DType::I32, DType::I64, DType::U8, DType::BOOL})
    if (n == dtype_name(t)) return t;
  return std::nullopt;
}

bool is_float(DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F16 || t == DType::F64; }

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) throw Error("negative dimension in shape " + shape_str(s));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      throw Error("shape " + shape_str(s) + " has too many elements");
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// IEEE binary16 by hand (clang has no _Float16 on plain x86-64), round-to-nearest-even.
uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) return sign | (x > 0x7f800000u ? 0x7e00 : 0x7c00);  // NaN stays NaN, inf
  if (x >= 0x477ff000u) return sign | 0x7c00;                                // rounds past 65504
  if (x < 0x38800000u) {  // below 2^-14: a subnormal half (or zero); count units of 2^-24, exactly scaled
    const float units = std::fabs(f) * 16777216.0f;
    return sign | static_cast<uint16_t>(std::nearbyint(units));  // default rounding mode: to nearest even
  }
  const uint32_t mant = x & 0x7fffffu;
  uint32_t h = ((((x >> 23) - 127 + 15)) << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry rolls into the exponent correctly
  return sign | static_cast<uint16_t>(h);
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    const float v = static_cast<float>(mant) * (1.0f / 16777216.0f);
    std::memcpy(&bits, &v, 4);
    bits |= sign;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

Tensor Tensor::zeros(DType dtype, Shape shape) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  size_t bytes = t.nbytes();
  size_t alloc = (bytes + 63) / 64 * 64;
  if (alloc == 0) alloc = 64;
  void* p = std::aligned_alloc(64, alloc);
  if (!p) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
  std::memset(p, 0, alloc);
  t.keepalive_ = std::shared_ptr<const void>(p, [](const void* q) { std::free(const_cast<void*>(q)); });
  t.data_ = p;
  t.owned_ = true;
  return t;
}

Tensor Tensor::view(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> keepalive) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.data_ = data;
  t.keepalive_ = std::move(keepalive);
  t.owned_ = false;
  return t;
}

Tensor Tensor::mapped_view(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> keepalive) {
  Tensor t = view(dtype, std::move(shape), data, std::move(keepalive));
  t.mapped_ = true;
  return t;
}

void Tensor::release_mapped_pages() const {
  if (!mapped_ || !data_) return;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t b = (reinterpret_cast<uintptr_t>(data_) + page - 1) / page * page;
  const uintptr_t e = (reinterpret_cast<uintptr_t>(data_) + nbytes()) / page * page;  // whole pages only
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

Tensor Tensor::from_f32(const std::vector<float>& values, Shape shape) {
  Tensor t = zeros(DType::F32, std::move(shape));
  if (static_cast<int64_t>(values.size()) != t.numel())
    throw Error({.message = "value count does not match shape", .expected = std::to_string(t.numel()),
                 .got = std::to_string(values.size())});
  std::memcpy(t.raw_mut(), values.data(), values.size() * 4);
  return t;
}

void* Tensor::raw_mut() {
  if (!owned_) throw Error("internal: attempt to write a read-only tensor view");
  return const_cast<void*>(data_);
}

void Tensor::check_type(size_t elem_size) const {
  if (elem_size != dtype_size(dtype_))
    throw Error(std::string("internal: tensor of dtype ") + dtype_name(dtype_) + " accessed with element size " +
                std::to_string(elem_size));
}

float Tensor::get_f32(int64_t i) const {
  const char* p = static_cast<const char*>(data_);
  switch (dtype_) {
    case DType::F32: { float v; std::memcpy(&v, p + 4 * i, 4); return v; }
    case DType::BF16: { uint16_t v; std::memcpy(&v, p + 2 * i, 2); return bf16_to_f32(v); }
    case DType::F16: { uint16_t v; std::memcpy(&v, p + 2 * i, 2); return f16_to_f32(v); }
    case DType::F64: { double v; std::memcpy(&v, p + 8 * i, 8); return static_cast<float>(v); }
    case DType::I32: { int32_t v; std::memcpy(&v, p + 4 * i, 4); return static_cast<float>(v); }
    case DType::I64: { int64_t v; std::memcpy(&v, p + 8 * i, 8); return static_cast<float>(v); }
    case DType::U8: case DType::BOOL: return static_cast<float>(static_cast<const uint8_t*>(data_)[i]);
  }
  return 0.f;
}

std::vector<float> Tensor::to_f32_vector() const {
  std::vector<float> v(static_cast<size_t>(numel()));
  if (dtype_ == DType::F32) {
    if (!v.empty()) std::memcpy(v.data(), data_, v.size() * 4);
  } else {
    for (size_t i = 0; i < v.size(); ++i) v[i] = get_f32(static_cast<int64_t>(i));
  }
  return v;
}

Tensor Tensor::owned() const { return owned_ ? *this : to(dtype_); }

Tensor Tensor::to_releasing(DType dtype) const {
  if (!mapped_) return to(dtype);
  Tensor out = zeros(dtype, shape_);
  const int64_t n = numel(), chunk = std::max<int64_t>(1, (int64_t{16} << 20) / static_cast<int64_t>(dtype_size(dtype_)));
  const size_t in_size = dtype_size(dtype_), out_size = dtype_size(dtype);
  for (int64_t i = 0; i < n; i += chunk) {
    const int64_t len = std::min(chunk, n - i);
    const Tensor part = mapped_view(dtype_, {len}, static_cast<const char*>(data_) + i * in_size, keepalive_);
    const Tensor conv = part.to(dtype);
    std::memcpy(static_cast<char*>(out.raw_mut()) + i * out_size, conv.raw(), conv.nbytes());
    part.release_mapped_pages();
  }
  release_mapped_pages();  // the pages straddling chunk boundaries
  return out;
}

Tensor Tensor::to(DType dtype) const {
  Tensor r = zeros(dtype, shape_);
  const int64_t n = numel();
  if (dtype == dtype_) {
    if (n) std::memcpy(r.raw_mut(), data_, nbytes());
    return r;
  }
  char* out = static_cast<char*>(r.raw_mut());
  const char* in = static_cast<const char*>(data_);
  for (int64_t i = 0; i < n; ++i) {
    double v;
    switch (dtype_) {
      case DType::I32: { int32_t x; std::memcpy(&x, in + 4 * i, 4); v = x; break; }
      case DType::I64: { int64_t x; std::memcpy(&x, in + 8 * i, 8); v = static_cast<double>(x); break; }
      case DType::F64: std::memcpy(&v, in + 8 * i, 8); break;
      default: v = get_f32(i);
    }
    switch (dtype) {
      case DType::F32: { float f = static_cast<float>(v); std::memcpy(out + 4 * i, &f, 4); break; }
      case DType::BF16: { uint16_t h = f32_to_bf16(static_cast<float>(v)); std::memcpy(out + 2 * i, &h, 2); break; }
      case DType::F16: { uint16_t h = f32_to_f16(static_cast<float>(v)); std::memcpy(out + 2 * i, &h, 2); break; }
      case DType::F64: std::memcpy(out + 8 * i, &v, 8); break;
      case DType::I32: { int32_t x = static_cast<int32_t>(v); std::memcpy(out + 4 * i, &x, 4); break; }
      case DType::I64: { int64_t x = static_cast<int64_t>(v); std::memcpy(out + 8 * i, &x, 8); break; }
      case DType::U8: out[i] = static_cast<char>(static_cast<uint8_t>(v)); break;
      case DType::BOOL: out[i] = v != 0.0 ? 1 : 0; break;
    }
  }
  return r;
}

Tensor Tensor::reshaped(Shape shape) const {
  if (shape_numel(shape) != numel())
    throw Error({.message = "reshape changes the element count", .expected = shape_str(shape_),
                 .got = shape_str(shape)});
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

}  // namespace pi0
