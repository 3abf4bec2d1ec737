// A plain tensor: dtype, shape and contiguous C-order storage that either owns aligned memory or
// views memory owned by someone else (a memory-mapped checkpoint), kept alive by a shared handle.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pi0 {

enum class DType : uint8_t { F32, BF16, F16, F64, I32, I64, U8, BOOL };

size_t dtype_size(DType t);
// safetensors spelling: "F32", "BF16", "F16", "F64", "I32", "I64", "U8", "BOOL".
const char* dtype_name(DType t);
std::optional<DType> dtype_from_name(std::string_view name);
bool is_float(DType t);

using Shape = std::vector<int64_t>;
// Number of elements; throws pi0::Error when the product overflows int64.
int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "[2, 3, 4]"

// bf16 / f16 <-> f32, round-to-nearest-even as PyTorch does (NaN stays NaN).
uint16_t f32_to_bf16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);

class Tensor {
 public:
  Tensor() = default;
  // Owned, zero-initialised, 64-byte aligned.
  static Tensor zeros(DType dtype, Shape shape);
  // Non-owning view; `keepalive` keeps the backing memory (e.g. a mapped file) alive.
  static Tensor view(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> keepalive);
  // A view into a read-only file mapping (the safetensors reader's): its pages can be released.
  static Tensor mapped_view(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> keepalive);
  // For mapped views: tell the kernel this process will not read these bytes again (a backend
  // that copied them elsewhere), so they leave the resident set. A no-op for other tensors.
  void release_mapped_pages() const;
  static Tensor from_f32(const std::vector<float>& values, Shape shape);
  // This tensor if it owns its memory, else an owned copy: what a loaded model keeps, so that a
  // checkpoint file rewritten or truncated under a running process changes nothing it reads.
  Tensor owned() const;

  bool defined() const { return data_ != nullptr || shape_numel(shape_) == 0; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool owns_memory() const { return owned_; }

  const void* raw() const { return data_; }
  // Writable access; only for owned tensors (views of a read-only map are never written).
  void* raw_mut();

  template <class T> const T* data() const { check_type(sizeof(T)); return static_cast<const T*>(data_); }
  template <class T> T* data_mut() { check_type(sizeof(T)); return static_cast<T*>(raw_mut()); }

  // Element i as f32 (any dtype).
  float get_f32(int64_t i) const;
  // Copy converted to `dtype` (float <-> float with RNE; integers widened/narrowed as C++ does).
  Tensor to(DType dtype) const;
  // As to(), but a mapped view's pages are released chunk by chunk as they are copied, so a large
  // table (the 2.1 GB f32 token embedding of an F32 checkpoint) never sits whole beside its copy.
  Tensor to_releasing(DType dtype) const;
  // The same memory seen with another shape of equal element count.
  Tensor reshaped(Shape shape) const;
  std::vector<float> to_f32_vector() const;

 private:
  void check_type(size_t elem_size) const;
  DType dtype_ = DType::F32;
  Shape shape_;
  std::shared_ptr<const void> keepalive_;
  const void* data_ = nullptr;
  bool owned_ = false;
  bool mapped_ = false;
};

}  // namespace pi0
