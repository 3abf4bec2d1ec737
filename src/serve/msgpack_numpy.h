// openpi's msgpack-numpy wire encoding (docs/model.md §7) <-> the Value tree.
//
// An ndarray travels as a msgpack map whose keys are msgpack *bin* (Python bytes):
//   {b"__ndarray__": true, b"data": <bin, C-order bytes>, b"dtype": "<f4", b"shape": [2, 3]}
// a numpy scalar as {b"__npgeneric__": true, b"data": <scalar>, b"dtype": "<f8"}; every other map
// key is a msgpack str. A bin value anywhere else (Python bytes, e.g. a prompt) decodes as UTF-8
// text, like a str. Decoding is strict because the bytes come from the network: every
// malformed, oversized or ambiguous input is a pi0::Error saying what was wrong and where
// (as a path like `obs["observation/image"]`), never a crash or an unbounded allocation.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "core/value.h"

namespace pi0::serve {

// Bounds applied while parsing (msgpack-cxx's unpack_limit) and while building tensors.
struct DecodeLimits {
  size_t max_depth = 32;             // nesting of maps/arrays
  size_t max_container = 4096;       // entries in one map or array
  size_t max_string = 1 << 20;       // bytes in one str (a prompt)
  size_t max_bin = size_t(1) << 31;  // bytes in one bin (the frame size limit is the real bound)
  size_t max_ndim = 32;              // numpy's own limit
};

// Decodes one msgpack document that must be a map at the top (an observation or a reply).
// Trailing bytes after the document are an error.
Dict decode_dict(std::string_view bytes, const DecodeLimits& limits = {});
// Decodes one msgpack document of any type.
Value decode_value(std::string_view bytes, const DecodeLimits& limits = {});

// Encodes as openpi's Packer does. Tensors become ndarray maps (dtype strings "<f4", "<f8",
// "<f2", "<i4", "<i8", "|u1", "|b1"); BF16, which numpy lacks, is widened to "<f4" exactly.
std::string encode(const Value& v);
std::string encode(const Dict& d);

// numpy dtype.str for a tensor dtype ("<f4", ...); BF16 has none and throws.
const char* numpy_dtype_str(DType t);

}  // namespace pi0::serve
