// safetensors files (docs/model.md §4.2): a memory-mapped reader that validates everything before handing
// out zero-copy views, and a streaming writer. Never reads past the end of the file.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pi0/tensor.h"

namespace pi0 {

struct SafeTensorsEntry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte range relative to the start of the data section
};

class SafeTensorsFile : public std::enable_shared_from_this<SafeTensorsFile> {
 public:
  // Maps and validates the whole header. `populate` prefaults the pages (use when every tensor
  // will be read, e.g. loading a model; not for `inspect`).
  static std::shared_ptr<SafeTensorsFile> open(const std::string& path, bool populate = false);
  // The same validation over bytes already in memory (copied); `name` stands in for the path.
  static std::shared_ptr<SafeTensorsFile> from_bytes(std::string bytes, const std::string& name);
  ~SafeTensorsFile();

  const std::string& path() const { return path_; }
  const std::vector<SafeTensorsEntry>& entries() const { return entries_; }
  const SafeTensorsEntry* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  uint64_t file_size() const { return size_; }

  // A view into the map (a copy only if the data is misaligned for its dtype).
  Tensor tensor(const SafeTensorsEntry& e) const;
  // Looks up `name`; throws an Error naming the file and tensor when it is absent.
  Tensor tensor(const std::string& name) const;

 private:
  SafeTensorsFile() = default;
  void parse_header();
  std::string path_;
  const uint8_t* map_ = nullptr;
  std::string owned_;  // backing bytes for from_bytes (map_ points into it)
  uint64_t size_ = 0;
  uint64_t data_start_ = 0;
  std::vector<SafeTensorsEntry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Writes tensors in the order given. Each tensor is produced on demand by `make` so that a
// multi-GB checkpoint never has to sit in memory at once; `on_written(i)` reports progress.
struct SafeTensorsWriteItem {
  std::string name;
  DType dtype;
  Shape shape;
  std::function<Tensor()> make;  // must return a tensor of exactly dtype/shape
};
void write_safetensors(const std::string& path, const std::vector<SafeTensorsWriteItem>& items,
                       const std::map<std::string, std::string>& metadata = {},
                       const std::function<void(size_t done, uint64_t bytes)>& on_written = {});

// Convenience for small files (tests, replay outputs): tensors already in memory.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace pi0
