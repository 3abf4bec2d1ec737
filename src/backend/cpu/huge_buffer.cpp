#include "backend/cpu/huge_buffer.h"

#include <sys/mman.h>

#include <string>

#include "pi0/error.h"

namespace pi0::cpu {

namespace {
constexpr size_t kPage = 4096;
}

HugeBuffer::HugeBuffer(size_t n) : size_((n + kPage - 1) / kPage * kPage) {
  if (size_ == 0) return;
  void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    size_ = 0;
    throw Error({.message = "out of memory for packed weights", .got = std::to_string(n) + " bytes"});
  }
  madvise(p, size_, MADV_HUGEPAGE);  // advice only: without THP the buffer still works
  data_ = static_cast<uint8_t*>(p);
}

HugeBuffer::~HugeBuffer() {
  if (data_) munmap(data_, size_);
}

}  // namespace pi0::cpu
