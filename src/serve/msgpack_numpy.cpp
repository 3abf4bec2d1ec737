#include "serve/msgpack_numpy.h"

#include <msgpack.hpp>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "pi0/error.h"

namespace pi0::serve {

static_assert(std::endian::native == std::endian::little, "the wire dtypes below assume a little-endian host");

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& message, const std::string& expected = "",
                       const std::string& got = "") {
  ErrorInfo e;
  e.message = message;
  e.field = path;
  e.expected = expected;
  e.got = got;
  throw Error(e);
}

const char* type_name(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL: return "nil";
    case msgpack::type::BOOLEAN: return "bool";
    case msgpack::type::POSITIVE_INTEGER: case msgpack::type::NEGATIVE_INTEGER: return "int";
    case msgpack::type::FLOAT32: case msgpack::type::FLOAT64: return "float";
    case msgpack::type::STR: return "str";
    case msgpack::type::BIN: return "bin";
    case msgpack::type::ARRAY: return "array";
    case msgpack::type::MAP: return "map";
    case msgpack::type::EXT: return "ext";
  }
  return "?";
}

// Python's msgpack (raw=False) refuses str that is not UTF-8; so do we, so that a prompt the
// tokenizer sees is always valid text.
bool valid_utf8(std::string_view s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

// A parsed numpy dtype.str: byte order, kind, item size, and what it becomes here.
struct WireDType {
  char order;     // '<', '>', '|' or '='
  char kind;      // 'f', 'i', 'u', 'b', ...
  size_t size;    // item size on the wire
  DType dtype;    // tensor dtype it decodes to (integers narrower than 4 bytes are widened)
};

std::optional<WireDType> parse_wire_dtype(std::string_view s, std::string& why) {
  if (s.size() < 2 || s.size() > 4) { why = "not a numpy dtype string"; return std::nullopt; }
  char order = s[0], kind = s[1];
  if (order != '<' && order != '>' && order != '|' && order != '=') { why = "unknown byte order"; return std::nullopt; }
  switch (kind) {  // numpy writes object as "|O", without a size
    case 'c': why = "complex dtypes are not supported"; return std::nullopt;
    case 'O': why = "object dtypes are not supported"; return std::nullopt;
    case 'V': why = "void/structured dtypes (including ml_dtypes bfloat16) are not supported"; return std::nullopt;
    case 'U': case 'S': why = "string arrays are not supported; send a plain str"; return std::nullopt;
    case 'M': case 'm': why = "datetime dtypes are not supported"; return std::nullopt;
    default: break;
  }
  size_t size = 0;
  if (s.size() < 3) { why = "not a numpy dtype string"; return std::nullopt; }
  for (char c : s.substr(2)) {
    if (c < '0' || c > '9') { why = "not a numpy dtype string"; return std::nullopt; }
    size = size * 10 + static_cast<size_t>(c - '0');
  }
  if (order == '|' && size != 1) { why = "'|' byte order on a multi-byte type"; return std::nullopt; }
  auto make = [&](DType t) { return WireDType{order, kind, size, t}; };
  if (kind == 'f' && size == 2) return make(DType::F16);
  if (kind == 'f' && size == 4) return make(DType::F32);
  if (kind == 'f' && size == 8) return make(DType::F64);
  if (kind == 'i' && (size == 1 || size == 2 || size == 4)) return make(DType::I32);
  if (kind == 'i' && size == 8) return make(DType::I64);
  if (kind == 'u' && size == 1) return make(DType::U8);
  if (kind == 'u' && size == 2) return make(DType::I32);
  if (kind == 'u' && size == 4) return make(DType::I64);
  if (kind == 'b' && size == 1) return make(DType::BOOL);
  why = "unsupported dtype (supported: f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 b1)";
  return std::nullopt;
}

// Reads wire element i (raw bytes, possibly big-endian) as an unsigned bit pattern.
uint64_t load_bits(const unsigned char* p, size_t size, bool big_endian) {
  uint64_t v = 0;
  for (size_t k = 0; k < size; ++k) v |= uint64_t(p[big_endian ? size - 1 - k : k]) << (8 * k);
  return v;
}

// Wire bytes -> tensor storage: byte-swap big-endian data, widen narrow integers, and make bools
// exactly 0/1 (numpy treats any non-zero byte as True).
Tensor build_tensor(const WireDType& w, Shape shape, std::string_view data) {
  Tensor t = Tensor::zeros(w.dtype, std::move(shape));
  const auto* src = reinterpret_cast<const unsigned char*>(data.data());
  const int64_t n = t.numel();
  const size_t out_size = dtype_size(w.dtype);
  const bool big = w.order == '>';
  if (w.dtype == DType::BOOL) {
    auto* dst = static_cast<uint8_t*>(t.raw_mut());
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] != 0;
  } else if (w.size == out_size && !big) {
    if (n > 0) std::memcpy(t.raw_mut(), src, data.size());
  } else if (w.size == out_size) {  // big-endian, same width: byte swap
    auto* dst = static_cast<unsigned char*>(t.raw_mut());
    for (int64_t i = 0; i < n; ++i)
      for (size_t k = 0; k < w.size; ++k) dst[i * w.size + k] = src[i * w.size + (w.size - 1 - k)];
  } else {  // narrow integer widened to I32 / I64, sign- or zero-extended
    for (int64_t i = 0; i < n; ++i) {
      uint64_t bits = load_bits(src + i * w.size, w.size, big);
      int64_t v;
      if (w.kind == 'i') {
        const int shift = 64 - 8 * static_cast<int>(w.size);
        v = static_cast<int64_t>(bits << shift) >> shift;
      } else {
        v = static_cast<int64_t>(bits);
      }
      if (w.dtype == DType::I32) t.data_mut<int32_t>()[i] = static_cast<int32_t>(v);
      else t.data_mut<int64_t>()[i] = v;
    }
  }
  return t;
}

class Decoder {
 public:
  explicit Decoder(const DecodeLimits& l) : limits_(l) {}

  Value value(const msgpack::object& o, const std::string& path) {
    switch (o.type) {
      case msgpack::type::NIL: return Value{};
      case msgpack::type::BOOLEAN: return Value(o.via.boolean);
      case msgpack::type::POSITIVE_INTEGER:
        if (o.via.u64 > uint64_t(std::numeric_limits<int64_t>::max()))
          fail(path, "integer does not fit in int64", "<= 9223372036854775807", std::to_string(o.via.u64));
        return Value(static_cast<int64_t>(o.via.u64));
      case msgpack::type::NEGATIVE_INTEGER: return Value(o.via.i64);
      case msgpack::type::FLOAT32: case msgpack::type::FLOAT64: return Value(o.via.f64);
      case msgpack::type::STR: return Value(str(o, path));
      // Python bytes outside an array: openpi clients may send a prompt as bytes (e.g. a task
      // string read from a dataset). Text it must be, as for str, so the policy sees one kind.
      case msgpack::type::BIN: {
        std::string_view s(o.via.bin.ptr, o.via.bin.size);
        if (s.size() > limits_.max_string)  // the str limit, which msgpack-cxx applies only to str
          fail(path, "bytes text too long", "<= " + std::to_string(limits_.max_string) + " bytes", std::to_string(s.size()) + " bytes");
        if (!valid_utf8(s)) fail(path, "bytes (msgpack bin) outside a numpy array must be UTF-8 text", "UTF-8 text", "invalid UTF-8");
        return Value(std::string(s));
      }
      case msgpack::type::EXT: fail(path, "msgpack ext types are not supported");
      case msgpack::type::ARRAY: {
        List l;
        l.reserve(o.via.array.size);
        for (uint32_t i = 0; i < o.via.array.size; ++i) l.push_back(value(o.via.array.ptr[i], path + "[" + std::to_string(i) + "]"));
        return Value(std::move(l));
      }
      case msgpack::type::MAP: return map(o, path);
    }
    fail(path, "unknown msgpack type");
  }

 private:
  std::string str(const msgpack::object& o, const std::string& path) {
    std::string_view s(o.via.str.ptr, o.via.str.size);
    if (!valid_utf8(s)) fail(path, "str is not valid UTF-8");
    return std::string(s);
  }

  static std::string_view key_of(const msgpack::object_kv& kv) {
    return {kv.key.via.str.ptr, kv.key.via.str.size};  // str and bin share the layout
  }

  Value map(const msgpack::object& o, const std::string& path) {
    const auto& m = o.via.map;
    bool bin_keys = false;
    for (uint32_t i = 0; i < m.size; ++i) {
      const auto& k = m.ptr[i].key;
      if (k.type == msgpack::type::BIN) {
        std::string_view ks = key_of(m.ptr[i]);
        if (ks == "__ndarray__") return ndarray(o, path);
        if (ks == "__npgeneric__") return npgeneric(o, path);
        bin_keys = true;
      }
    }
    Dict d;
    for (uint32_t i = 0; i < m.size; ++i) {
      const auto& kv = m.ptr[i];
      if (kv.key.type != msgpack::type::STR) {
        if (bin_keys && kv.key.type == msgpack::type::BIN)
          fail(path, "map key '" + std::string(key_of(kv)) + "' is msgpack bin; dict keys must be str (bin keys mark numpy arrays only)");
        fail(path, "map key must be str", "str", type_name(kv.key));
      }
      std::string key = str(kv.key, path);
      if (key == "__ndarray__" || key == "__npgeneric__")
        fail(path, "'" + key + "' is a msgpack str key; openpi's msgpack-numpy encoding needs the array marker keys as bin (Python bytes)");
      std::string child = path + "[\"" + key + "\"]";
      if (d.count(key)) fail(path, "duplicate map key '" + key + "'");
      d.emplace(key, value(kv.val, child));
    }
    return Value(std::move(d));
  }

  // The marker maps: every key bin, each expected key exactly once, nothing else.
  struct Fields {
    const msgpack::object* marker = nullptr;
    const msgpack::object* data = nullptr;
    const msgpack::object* dtype = nullptr;
    const msgpack::object* shape = nullptr;
  };
  Fields fields(const msgpack::object& o, const std::string& path, const char* marker, bool with_shape) {
    Fields f;
    for (uint32_t i = 0; i < o.via.map.size; ++i) {
      const auto& kv = o.via.map.ptr[i];
      if (kv.key.type != msgpack::type::BIN)
        fail(path, std::string("numpy ") + (with_shape ? "array" : "scalar") + " map keys must all be bin", "bin", type_name(kv.key));
      std::string_view k = key_of(kv);
      const msgpack::object** slot = k == marker ? &f.marker : k == "data" ? &f.data : k == "dtype" ? &f.dtype
                                     : (with_shape && k == "shape") ? &f.shape : nullptr;
      if (!slot) fail(path, "unexpected key '" + std::string(k) + "' in a numpy " + (with_shape ? "array" : "scalar") + " map");
      if (*slot) fail(path, "duplicate key '" + std::string(k) + "' in a numpy map");
      *slot = &kv.val;
    }
    if (f.marker->type != msgpack::type::BOOLEAN || !f.marker->via.boolean)
      fail(path, std::string("'") + marker + "' must be true", "true", type_name(*f.marker));
    if (!f.data) fail(path, std::string("numpy map lacks 'data'"));
    if (!f.dtype) fail(path, std::string("numpy map lacks 'dtype'"));
    if (with_shape && !f.shape) fail(path, std::string("numpy array map lacks 'shape'"));
    if (f.dtype->type != msgpack::type::STR) fail(path, "'dtype' must be a str", "str", type_name(*f.dtype));
    return f;
  }

  WireDType wire_dtype(const msgpack::object& o, const std::string& path) {
    std::string s(o.via.str.ptr, o.via.str.size);
    std::string why;
    auto w = parse_wire_dtype(s, why);
    if (!w) fail(path, "dtype '" + s + "': " + why);
    return *w;
  }

  Value ndarray(const msgpack::object& o, const std::string& path) {
    Fields f = fields(o, path, "__ndarray__", true);
    WireDType w = wire_dtype(*f.dtype, path);
    if (f.data->type != msgpack::type::BIN) fail(path, "array 'data' must be bin", "bin", type_name(*f.data));
    if (f.shape->type != msgpack::type::ARRAY) fail(path, "array 'shape' must be an array of ints", "array", type_name(*f.shape));
    const auto& sa = f.shape->via.array;
    if (sa.size > limits_.max_ndim)
      fail(path, "array has too many dimensions", "<= " + std::to_string(limits_.max_ndim), std::to_string(sa.size));
    Shape shape;
    for (uint32_t i = 0; i < sa.size; ++i) {
      const auto& d = sa.ptr[i];
      if (d.type != msgpack::type::POSITIVE_INTEGER || d.via.u64 > uint64_t(std::numeric_limits<int64_t>::max()))
        fail(path, "array 'shape' entries must be non-negative ints", "int >= 0", type_name(d));
      shape.push_back(static_cast<int64_t>(d.via.u64));
    }
    // numel × itemsize must equal the data length; checked without overflow so a huge declared
    // shape is an error and never an allocation.
    const size_t nbytes = f.data->via.bin.size;
    uint64_t need = w.size;
    bool overflow = false;
    for (int64_t d : shape) {
      if (d != 0 && need > std::numeric_limits<uint64_t>::max() / uint64_t(d)) overflow = true;
      else need *= uint64_t(d);
    }
    if (std::find(shape.begin(), shape.end(), 0) != shape.end()) need = 0, overflow = false;
    if (overflow || need != nbytes)
      fail(path, "array data length does not match shape " + shape_str(shape) + " x itemsize " + std::to_string(w.size),
           overflow ? "a representable size" : std::to_string(need) + " bytes", std::to_string(nbytes) + " bytes");
    return Value(build_tensor(w, std::move(shape), std::string_view(f.data->via.bin.ptr, nbytes)));
  }

  // A numpy scalar: the payload is a plain msgpack scalar that must fit the declared dtype.
  // Numeric scalars become 0-d tensors (numpy treats them as such); str scalars become str.
  Value npgeneric(const msgpack::object& o, const std::string& path) {
    Fields f = fields(o, path, "__npgeneric__", false);
    std::string ds(f.dtype->via.str.ptr, f.dtype->via.str.size);
    if (ds.size() >= 2 && ds[1] == 'U') {
      if (f.data->type != msgpack::type::STR) fail(path, "numpy str scalar needs str data", "str", type_name(*f.data));
      return Value(str(*f.data, path));
    }
    WireDType w = wire_dtype(*f.dtype, path);
    Tensor t = Tensor::zeros(w.dtype, {});
    const msgpack::object& d = *f.data;
    auto want = [&](bool ok, const char* what) {
      if (!ok) fail(path, "numpy scalar data does not match dtype '" + ds + "'", what, type_name(d));
    };
    if (w.kind == 'b') {
      want(d.type == msgpack::type::BOOLEAN, "bool");
      t.data_mut<uint8_t>()[0] = d.via.boolean;
    } else if (w.kind == 'f') {
      const bool is_int = d.type == msgpack::type::POSITIVE_INTEGER || d.type == msgpack::type::NEGATIVE_INTEGER;
      want(d.type == msgpack::type::FLOAT32 || d.type == msgpack::type::FLOAT64 || is_int, "float");
      double x = d.type == msgpack::type::POSITIVE_INTEGER ? double(d.via.u64)
                 : d.type == msgpack::type::NEGATIVE_INTEGER ? double(d.via.i64) : d.via.f64;
      if (w.dtype == DType::F64) t.data_mut<double>()[0] = x;
      else if (w.dtype == DType::F32) t.data_mut<float>()[0] = static_cast<float>(x);
      else t.data_mut<uint16_t>()[0] = f32_to_f16(static_cast<float>(x));
    } else {  // 'i' / 'u': the value must fit the declared width
      want(d.type == msgpack::type::POSITIVE_INTEGER || d.type == msgpack::type::NEGATIVE_INTEGER, "int");
      const int bits = static_cast<int>(8 * w.size);
      const bool neg = d.type == msgpack::type::NEGATIVE_INTEGER;
      bool fits;
      if (w.kind == 'u') fits = !neg && (bits == 64 || d.via.u64 < (uint64_t(1) << bits));
      else if (neg) fits = bits == 64 || d.via.i64 >= -(int64_t(1) << (bits - 1));
      else fits = d.via.u64 <= (bits == 64 ? uint64_t(std::numeric_limits<int64_t>::max()) : (uint64_t(1) << (bits - 1)) - 1);
      if (!fits) fail(path, "numpy scalar value out of range for dtype '" + ds + "'");
      int64_t v = neg ? d.via.i64 : static_cast<int64_t>(d.via.u64);
      if (w.dtype == DType::U8) t.data_mut<uint8_t>()[0] = static_cast<uint8_t>(v);
      else if (w.dtype == DType::I32) t.data_mut<int32_t>()[0] = static_cast<int32_t>(v);
      else t.data_mut<int64_t>()[0] = v;
    }
    return Value(std::move(t));
  }

  const DecodeLimits& limits_;
};

// str and bin objects point into the caller's buffer instead of being copied: the buffer outlives
// the conversion, and the tensor copy below is the only copy of array data.
bool reference_everything(msgpack::type::object_type, std::size_t, void*) { return true; }

// msgpack::packer's stream: appends to a std::string.
struct StringSink {
  std::string& out;
  void write(const char* p, size_t n) { out.append(p, n); }
};
using Packer = msgpack::packer<StringSink>;

// msgpack-cxx's pack_double writes integral doubles (2.0, -0.0) as msgpack ints; Python packs every
// float as float 64, and a client must get a float back where openpi sends one. So: by hand.
void pack_float64(StringSink& sink, double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, 8);
  char buf[9];
  buf[0] = static_cast<char>(0xcb);
  for (int k = 0; k < 8; ++k) buf[1 + k] = static_cast<char>(bits >> (8 * (7 - k)));
  sink.write(buf, 9);
}

void pack_bin_key(Packer& pk, std::string_view k) {
  pk.pack_bin(static_cast<uint32_t>(k.size()));
  pk.pack_bin_body(k.data(), static_cast<uint32_t>(k.size()));
}

void pack_str(Packer& pk, std::string_view s) {
  if (s.size() > std::numeric_limits<uint32_t>::max()) throw Error("string too long to encode as msgpack");
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

void pack_tensor(Packer& pk, const Tensor& in) {
  const Tensor t = in.dtype() == DType::BF16 ? in.to(DType::F32) : in;
  if (t.nbytes() > std::numeric_limits<uint32_t>::max()) throw Error("tensor too large to encode as msgpack bin");
  // Same key order as openpi's pack_array, so equal arrays give equal bytes.
  pk.pack_map(4);
  pack_bin_key(pk, "__ndarray__");
  pk.pack_true();
  pack_bin_key(pk, "data");
  pk.pack_bin(static_cast<uint32_t>(t.nbytes()));
  pk.pack_bin_body(static_cast<const char*>(t.raw()), static_cast<uint32_t>(t.nbytes()));
  pack_bin_key(pk, "dtype");
  pack_str(pk, numpy_dtype_str(t.dtype()));
  pack_bin_key(pk, "shape");
  pk.pack_array(static_cast<uint32_t>(t.ndim()));
  for (int64_t d : t.shape()) pk.pack_int64(d);
}

void pack_value(Packer& pk, StringSink& sink, const Value& v);

void pack_dict(Packer& pk, StringSink& sink, const Dict& d) {
  pk.pack_map(static_cast<uint32_t>(d.size()));
  for (const auto& [k, v] : d) {
    pack_str(pk, k);
    pack_value(pk, sink, v);
  }
}

void pack_value(Packer& pk, StringSink& sink, const Value& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) pk.pack_nil();
        else if constexpr (std::is_same_v<T, bool>) x ? pk.pack_true() : pk.pack_false();
        else if constexpr (std::is_same_v<T, int64_t>) pk.pack_int64(x);
        else if constexpr (std::is_same_v<T, double>) pack_float64(sink, x);
        else if constexpr (std::is_same_v<T, std::string>) pack_str(pk, x);
        else if constexpr (std::is_same_v<T, Tensor>) pack_tensor(pk, x);
        else if constexpr (std::is_same_v<T, List>) {
          pk.pack_array(static_cast<uint32_t>(x.size()));
          for (const auto& e : x) pack_value(pk, sink, e);
        } else pack_dict(pk, sink, x);
      },
      v.v);
}

}  // namespace

const char* numpy_dtype_str(DType t) {
  switch (t) {
    case DType::F32: return "<f4";
    case DType::F64: return "<f8";
    case DType::F16: return "<f2";
    case DType::I32: return "<i4";
    case DType::I64: return "<i8";
    case DType::U8: return "|u1";
    case DType::BOOL: return "|b1";
    case DType::BF16: break;
  }
  throw Error(std::string("dtype ") + dtype_name(t) + " has no numpy equivalent");
}

Value decode_value(std::string_view bytes, const DecodeLimits& limits) {
  msgpack::unpack_limit lim(limits.max_container, limits.max_container, limits.max_string, limits.max_bin,
                            /*ext=*/0, limits.max_depth);
  msgpack::object_handle h;
  size_t off = 0;
  try {
    h = msgpack::unpack(bytes.data(), bytes.size(), off, reference_everything, nullptr, lim);
  } catch (const msgpack::insufficient_bytes&) {
    throw Error("malformed msgpack: message ends in the middle of a value (" + std::to_string(bytes.size()) + " bytes)");
  } catch (const msgpack::str_size_overflow&) {
    throw Error("msgpack message holds a string longer than " + std::to_string(limits.max_string) +
                " bytes (the server's limit on one str, e.g. a prompt)");
  } catch (const msgpack::bin_size_overflow&) {
    throw Error("msgpack message holds a bin longer than " + std::to_string(limits.max_bin) + " bytes");
  } catch (const msgpack::array_size_overflow&) {
    throw Error("msgpack message holds an array of more than " + std::to_string(limits.max_container) + " entries");
  } catch (const msgpack::map_size_overflow&) {
    throw Error("msgpack message holds a map of more than " + std::to_string(limits.max_container) + " entries");
  } catch (const msgpack::depth_size_overflow&) {
    throw Error("msgpack message nests deeper than " + std::to_string(limits.max_depth) + " levels");
  } catch (const msgpack::size_overflow& e) {
    throw Error(std::string("msgpack message exceeds a size limit: ") + e.what());
  } catch (const std::exception& e) {
    throw Error(std::string("malformed msgpack: ") + e.what());
  }
  if (off != bytes.size())
    throw Error("malformed msgpack: " + std::to_string(bytes.size() - off) + " trailing bytes after the message");
  return Decoder(limits).value(h.get(), "message");
}

Dict decode_dict(std::string_view bytes, const DecodeLimits& limits) {
  Value v = decode_value(bytes, limits);
  if (Dict* d = v.get_if<Dict>()) return std::move(*d);
  if (v.is<Tensor>()) throw Error("expected a msgpack map (dict) at the top of the message, got a numpy array");
  throw Error("expected a msgpack map (dict) at the top of the message");
}

std::string encode(const Value& v) {
  std::string out;
  StringSink sink{out};
  Packer pk(sink);
  pack_value(pk, sink, v);
  return out;
}

std::string encode(const Dict& d) {
  std::string out;
  StringSink sink{out};
  Packer pk(sink);
  pack_dict(pk, sink, d);
  return out;
}

}  // namespace pi0::serve
