// Memory for weights the GEMMs stream by the gigabyte: an anonymous mapping advised into
// transparent huge pages (fewer TLB misses; advice only, it works without THP), zero on first
// touch, so no zero-filling pass faults every page in before the packing writes it anyway.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>

namespace pi0::cpu {

class HugeBuffer {
 public:
  HugeBuffer() = default;
  explicit HugeBuffer(size_t n);  // n zero bytes; throws pi0::Error when the mapping fails
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer(HugeBuffer&& o) noexcept { *this = std::move(o); }
  HugeBuffer& operator=(HugeBuffer&& o) noexcept {
    std::swap(size_, o.size_);
    std::swap(data_, o.data_);
    return *this;
  }
  ~HugeBuffer();
  uint8_t* data() const { return data_; }

 private:
  size_t size_ = 0;
  uint8_t* data_ = nullptr;
};

}  // namespace pi0::cpu
