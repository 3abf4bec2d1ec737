#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "pi0/error.h"

namespace pi0 {
namespace {

// A header beyond this is not a checkpoint header; refusing it keeps a hostile length from
// turning into a huge allocation. The real π0 header is about 100 KB.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

[[noreturn]] void bad(const std::string& file, const std::string& msg, const std::string& tensor = {},
                      const std::string& field = {}, const std::string& expected = {},
                      const std::string& got = {}) {
  throw Error({.message = msg, .file = file, .tensor = tensor, .field = field, .expected = expected, .got = got});
}

}  // namespace

std::shared_ptr<SafeTensorsFile> SafeTensorsFile::open(const std::string& path, bool populate) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) bad(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    bad(path, "not a regular file");
  }
  std::shared_ptr<SafeTensorsFile> f(new SafeTensorsFile());
  f->path_ = path;
  f->size_ = static_cast<uint64_t>(st.st_size);
  if (f->size_ > 0) {
    int flags = MAP_PRIVATE | (populate ? MAP_POPULATE : 0);
    void* p = mmap(nullptr, f->size_, PROT_READ, flags, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      bad(path, std::string("mmap failed: ") + std::strerror(errno));
    }
    f->map_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  f->parse_header();
  return f;
}

std::shared_ptr<SafeTensorsFile> SafeTensorsFile::from_bytes(std::string bytes, const std::string& name) {
  std::shared_ptr<SafeTensorsFile> f(new SafeTensorsFile());
  f->path_ = name;
  f->owned_ = std::move(bytes);
  f->size_ = f->owned_.size();
  f->map_ = reinterpret_cast<const uint8_t*>(f->owned_.data());
  f->parse_header();
  return f;
}

SafeTensorsFile::~SafeTensorsFile() {
  if (map_ && owned_.empty()) munmap(const_cast<uint8_t*>(map_), size_);
}

void SafeTensorsFile::parse_header() {
  if (size_ < 8) bad(path_, "file too short for a safetensors header", {}, "header length", ">= 8 bytes",
                     std::to_string(size_) + " bytes");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | map_[i];
  if (n > size_ - 8)
    bad(path_, "header length runs past the end of the file (truncated?)", {}, "header length",
        "<= " + std::to_string(size_ - 8), std::to_string(n));
  if (n > kMaxHeaderBytes)
    bad(path_, "header is implausibly large", {}, "header length", "<= " + std::to_string(kMaxHeaderBytes),
        std::to_string(n));
  data_start_ = 8 + n;
  const uint64_t data_size = size_ - data_start_;

  nlohmann::json h;
  try {
    h = nlohmann::json::parse(reinterpret_cast<const char*>(map_ + 8), reinterpret_cast<const char*>(map_ + 8 + n));
  } catch (const nlohmann::json::exception& e) {
    bad(path_, std::string("header is not valid JSON: ") + e.what());
  }
  if (!h.is_object()) bad(path_, "header JSON is not an object");

  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) bad(path_, "__metadata__ is not an object", {}, "__metadata__");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) bad(path_, "metadata values must be strings", {}, "__metadata__." + m.key());
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) bad(path_, "entry is not an object", name);
    SafeTensorsEntry e;
    e.name = name;
    if (!v.contains("dtype") || !v["dtype"].is_string()) bad(path_, "missing or non-string dtype", name, "dtype");
    auto dt = dtype_from_name(v["dtype"].get<std::string>());
    if (!dt) bad(path_, "unknown dtype", name, "dtype", "one of F32 BF16 F16 F64 I32 I64 U8 BOOL", v["dtype"].get<std::string>());
    e.dtype = *dt;
    if (!v.contains("shape") || !v["shape"].is_array()) bad(path_, "missing or non-array shape", name, "shape");
    for (const auto& d : v["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) bad(path_, "shape entries must be non-negative integers", name, "shape");
      e.shape.push_back(d.get<int64_t>());
    }
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      bad(path_, "data_offsets must be [begin, end]", name, "data_offsets");
    for (const auto& d : v["data_offsets"])
      if (!d.is_number_unsigned()) bad(path_, "data_offsets must be non-negative integers", name, "data_offsets");
    e.begin = v["data_offsets"][0].get<uint64_t>();
    e.end = v["data_offsets"][1].get<uint64_t>();
    if (e.begin > e.end) bad(path_, "data_offsets begin after end", name, "data_offsets", "begin <= end",
                             std::to_string(e.begin) + " > " + std::to_string(e.end));
    if (e.end > data_size)
      bad(path_, "data_offsets run past the end of the file", name, "data_offsets",
          "end <= " + std::to_string(data_size), std::to_string(e.end));
    int64_t numel;
    try {
      numel = shape_numel(e.shape);
    } catch (const Error&) {
      bad(path_, "shape has too many elements", name, "shape", {}, shape_str(e.shape));
    }
    const uint64_t want = static_cast<uint64_t>(numel);
    if (want > data_size / dtype_size(e.dtype) || want * dtype_size(e.dtype) != e.end - e.begin)
      bad(path_, "shape x dtype size does not match the byte range", name, "data_offsets",
          std::to_string(static_cast<unsigned long long>(want) * dtype_size(e.dtype)) + " bytes for " +
              shape_str(e.shape) + " " + dtype_name(e.dtype),
          std::to_string(e.end - e.begin) + " bytes");
    index_[name] = entries_.size();
    entries_.push_back(std::move(e));
  }
  // No two tensors may share bytes.
  std::vector<const SafeTensorsEntry*> byoff;
  for (const auto& e : entries_) if (e.end > e.begin) byoff.push_back(&e);
  std::sort(byoff.begin(), byoff.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < byoff.size(); ++i)
    if (byoff[i]->begin < byoff[i - 1]->end)
      bad(path_, "byte range overlaps tensor '" + byoff[i - 1]->name + "'", byoff[i]->name, "data_offsets",
          "begin >= " + std::to_string(byoff[i - 1]->end), std::to_string(byoff[i]->begin));
}

const SafeTensorsEntry* SafeTensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

Tensor SafeTensorsFile::tensor(const SafeTensorsEntry& e) const {
  const uint8_t* p = map_ + data_start_ + e.begin;
  if (reinterpret_cast<uintptr_t>(p) % dtype_size(e.dtype) != 0) {
    // Misaligned data (legal in the format): copy rather than hand out an unaligned typed pointer.
    Tensor t = Tensor::zeros(e.dtype, e.shape);
    if (e.end > e.begin) std::memcpy(t.raw_mut(), p, e.end - e.begin);
    return t;
  }
  if (!owned_.empty()) return Tensor::view(e.dtype, e.shape, p, shared_from_this());  // from_bytes: not a map
  return Tensor::mapped_view(e.dtype, e.shape, p, shared_from_this());
}

Tensor SafeTensorsFile::tensor(const std::string& name) const {
  const SafeTensorsEntry* e = find(name);
  if (!e) bad(path_, "tensor not found", name);
  return tensor(*e);
}

void write_safetensors(const std::string& path, const std::vector<SafeTensorsWriteItem>& items,
                       const std::map<std::string, std::string>& metadata,
                       const std::function<void(size_t, uint64_t)>& on_written) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t off = 0;
  for (const auto& it : items) {
    uint64_t bytes = static_cast<uint64_t>(shape_numel(it.shape)) * dtype_size(it.dtype);
    h[it.name] = {{"dtype", dtype_name(it.dtype)}, {"shape", it.shape}, {"data_offsets", {off, off + bytes}}};
    off += bytes;
  }
  std::string header = h.dump();
  while ((header.size() + 8) % 8 != 0) header.push_back(' ');  // keep the data 8-byte aligned
  const std::string tmp = path + ".partial";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) bad(path, "cannot open for writing");
  uint64_t n = header.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  uint64_t written = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& it = items[i];
    Tensor t = it.make();
    if (t.dtype() != it.dtype || t.shape() != it.shape)
      bad(path, "internal: produced tensor does not match its declared dtype/shape", it.name);
    out.write(static_cast<const char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
    written += t.nbytes();
    if (on_written) on_written(i + 1, written);
  }
  out.close();
  if (!out) bad(path, "write failed (disk full?)");
  // Rename at the end so a crash never leaves a truncated file under the real name.
  if (std::rename(tmp.c_str(), path.c_str()) != 0) bad(path, std::string("rename failed: ") + std::strerror(errno));
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<SafeTensorsWriteItem> items;
  for (const auto& item : tensors) {
    const Tensor t = item.second;
    items.push_back({item.first, t.dtype(), t.shape(), [t] { return t; }});
  }
  write_safetensors(path, items, metadata);
}

}  // namespace pi0
