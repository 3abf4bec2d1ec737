// The msgpack-numpy codec: byte-exact agreement with openpi's Python packer (hex strings below were
// produced by msgpack 1.0 + numpy with openpi's pack_array hook), round trips of every dtype and
// value kind, and a clean pi0::Error for every kind of malformed input.
#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <cstring>
#include <functional>

#include "pi0/error.h"
#include "serve/msgpack_numpy.h"

using namespace pi0;
using pi0::serve::decode_dict;
using pi0::serve::decode_value;
using pi0::serve::encode;

namespace {

std::string unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) out += {d[c >> 4], d[c & 15]};
  return out;
}

template <class T> Tensor make(DType dt, Shape shape, std::vector<T> vals) {
  Tensor t = Tensor::zeros(dt, std::move(shape));
  std::memcpy(t.raw_mut(), vals.data(), vals.size() * sizeof(T));
  return t;
}

// Hand-built msgpack for the rejection cases.
struct Raw {
  std::string out;
  struct Sink {
    std::string* s;
    void write(const char* p, size_t n) { s->append(p, n); }
  } sink{&out};
  msgpack::packer<Sink> pk{sink};
  Raw& str(std::string_view s) { pk.pack_str(uint32_t(s.size())); pk.pack_str_body(s.data(), uint32_t(s.size())); return *this; }
  Raw& bin(std::string_view s) { pk.pack_bin(uint32_t(s.size())); pk.pack_bin_body(s.data(), uint32_t(s.size())); return *this; }
  Raw& map(uint32_t n) { pk.pack_map(n); return *this; }
  Raw& arr(uint32_t n) { pk.pack_array(n); return *this; }
  Raw& i(int64_t v) { pk.pack_int64(v); return *this; }
  Raw& b(bool v) { v ? pk.pack_true() : pk.pack_false(); return *this; }
  Raw& f(double v) {  // always float 64, as Python packs it (msgpack-cxx would write 1.0 as an int)
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    out.push_back(char(0xcb));
    for (int k = 7; k >= 0; --k) out.push_back(char(bits >> (8 * k)));
    return *this;
  }
  Raw& nil() { pk.pack_nil(); return *this; }
};

// {"x": ndarray with the given pieces}; `shape` as a list of ints.
std::string array_msg(std::string_view dtype, std::vector<int64_t> shape, std::string_view data) {
  Raw r;
  r.map(1).str("x").map(4).bin("__ndarray__").b(true).bin("data").bin(data).bin("dtype").str(dtype).bin("shape").arr(uint32_t(shape.size()));
  for (auto d : shape) r.i(d);
  return r.out;
}

// Expects decode_dict to throw pi0::Error whose message contains `needle`.
void expect_reject(const std::string& bytes, const std::string& needle, const serve::DecodeLimits& lim = {}) {
  try {
    decode_dict(bytes, lim);
    ADD_FAILURE() << "accepted; expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "error was: " << e.what();
  }
}

}  // namespace

TEST(MsgpackNumpy, EncodesArraysByteForByteAsOpenpi) {
  Dict d{{"a", make<uint8_t>(DType::U8, {1, 3}, {1, 2, 3})}};
  EXPECT_EQ(hex(encode(d)),
            "81a16184c40b5f5f6e6461727261795f5fc3c40464617461c403010203c4056474797065a37c7531c4057368617065920103");
  Dict r{{"actions", make<double>(DType::F64, {2}, {0.5, -1.0})}, {"n", 3}, {"s", "hi"}};
  EXPECT_EQ(hex(encode(r)),
            "83a7616374696f6e7384c40b5f5f6e6461727261795f5fc3c40464617461c410000000000000e03f000000000000f0bfc405"
            "6474797065a33c6638c40573686170659102a16e03a173a26869");
  Dict l{{"x", List{1, -1, 300, int64_t(1) << 40, Value{}, true, 1.25}}};
  EXPECT_EQ(hex(encode(l)), "81a1789701ffcd012ccf0000010000000000c0c3cb3ff4000000000000");
  // Integral floats stay float 64 (Python: msgpack.packb({"x": 2.0, "y": -0.0})).
  EXPECT_EQ(hex(encode(Dict{{"x", 2.0}, {"y", -0.0}})), "82a178cb4000000000000000a179cb8000000000000000");
}

TEST(MsgpackNumpy, DecodesPythonBytes) {
  Dict d = decode_dict(unhex("81a16184c40b5f5f6e6461727261795f5fc3c40464617461c403010203c4056474797065a37c7531c4057368617065920103"));
  const Tensor& t = *d.at("a").get_if<Tensor>();
  EXPECT_EQ(t.dtype(), DType::U8);
  EXPECT_EQ(t.shape(), (Shape{1, 3}));
  EXPECT_EQ(t.data<uint8_t>()[2], 3);
  // numpy scalars become 0-d tensors of their dtype.
  Value f = decode_value(unhex("83c40d5f5f6e7067656e657269635f5fc3c40464617461cb3ff8000000000000c4056474797065a33c6634"));
  ASSERT_TRUE(f.is<Tensor>());
  EXPECT_EQ(f.get_if<Tensor>()->dtype(), DType::F32);
  EXPECT_EQ(f.get_if<Tensor>()->ndim(), 0);
  EXPECT_EQ(f.get_if<Tensor>()->data<float>()[0], 1.5f);
  Value s = decode_value(unhex("83c40d5f5f6e7067656e657269635f5fc3c40464617461f9c4056474797065a33c6932"));
  EXPECT_EQ(s.get_if<Tensor>()->dtype(), DType::I32);  // int16 widened
  EXPECT_EQ(s.get_if<Tensor>()->data<int32_t>()[0], -7);
}

TEST(MsgpackNumpy, RoundTripsEveryDtypeAndValueKind) {
  Dict in;
  in["f32"] = make<float>(DType::F32, {2, 2}, {1.f, -2.f, 3.5f, 1e-30f});
  in["f64"] = make<double>(DType::F64, {3}, {1.0, -2.25, 1e300});
  in["f16"] = make<uint16_t>(DType::F16, {2}, {f32_to_f16(1.5f), f32_to_f16(-0.25f)});
  in["i32"] = make<int32_t>(DType::I32, {2}, {-5, 7});
  in["i64"] = make<int64_t>(DType::I64, {1}, {int64_t(1) << 50});
  in["u8"] = make<uint8_t>(DType::U8, {2, 1, 2}, {0, 255, 7, 9});
  in["bool"] = make<uint8_t>(DType::BOOL, {3}, {1, 0, 1});
  in["scalar0d"] = make<float>(DType::F32, {}, {2.5f});
  in["empty"] = Tensor::zeros(DType::F32, {0, 3});
  in["prompt"] = "pick up the fork — ünïcode";
  in["nested"] = Dict{{"deep", Dict{{"n", -3}, {"ok", false}}}, {"list", List{1.5, "a", Value{}}}};
  Dict out = decode_dict(encode(in));
  ASSERT_EQ(out.size(), in.size());
  for (const auto& [k, v] : in) {
    SCOPED_TRACE(k);
    if (const Tensor* t = v.get_if<Tensor>()) {
      const Tensor* u = out.at(k).get_if<Tensor>();
      ASSERT_NE(u, nullptr);
      EXPECT_EQ(u->dtype(), t->dtype());
      EXPECT_EQ(u->shape(), t->shape());
      EXPECT_EQ(0, std::memcmp(u->raw(), t->raw(), t->nbytes()));
    }
  }
  EXPECT_EQ(*out.at("prompt").get_if<std::string>(), "pick up the fork — ünïcode");
  const Dict& nested = *out.at("nested").get_if<Dict>();
  EXPECT_EQ(*nested.at("deep").get_if<Dict>()->at("n").get_if<int64_t>(), -3);
  EXPECT_EQ(*nested.at("deep").get_if<Dict>()->at("ok").get_if<bool>(), false);
  const List& list = *nested.at("list").get_if<List>();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(*list[0].get_if<double>(), 1.5);
  EXPECT_TRUE(list[2].is_null());
  // Re-encoding what was decoded gives the same bytes.
  EXPECT_EQ(encode(out), encode(in));
}

TEST(MsgpackNumpy, Bf16IsWidenedToF32) {
  Tensor t = Tensor::zeros(DType::BF16, {2});
  t.data_mut<uint16_t>()[0] = f32_to_bf16(1.5f);
  t.data_mut<uint16_t>()[1] = f32_to_bf16(-3.0f);
  Tensor u = *decode_dict(encode(Dict{{"x", t}})).at("x").get_if<Tensor>();
  EXPECT_EQ(u.dtype(), DType::F32);
  EXPECT_EQ(u.data<float>()[0], 1.5f);
  EXPECT_EQ(u.data<float>()[1], -3.0f);
}

TEST(MsgpackNumpy, WidensNarrowIntegersSwapsBigEndianNormalisesBools) {
  const char i16[] = {char(0xfe), char(0xff), 5, 0};  // -2, 5
  Tensor a = *decode_dict(array_msg("<i2", {2}, std::string_view(i16, 4))).at("x").get_if<Tensor>();
  EXPECT_EQ(a.dtype(), DType::I32);
  EXPECT_EQ(a.data<int32_t>()[0], -2);
  EXPECT_EQ(a.data<int32_t>()[1], 5);
  const char u16[] = {char(0xff), char(0xff)};
  EXPECT_EQ(decode_dict(array_msg("<u2", {1}, std::string_view(u16, 2))).at("x").get_if<Tensor>()->data<int32_t>()[0], 65535);
  const char u32[] = {char(0xff), char(0xff), char(0xff), char(0xff)};
  EXPECT_EQ(decode_dict(array_msg("<u4", {1}, std::string_view(u32, 4))).at("x").get_if<Tensor>()->data<int64_t>()[0], 4294967295);
  const char be[] = {0x3f, char(0xc0), 0, 0};  // 1.5f big-endian
  EXPECT_EQ(decode_dict(array_msg(">f4", {1}, std::string_view(be, 4))).at("x").get_if<Tensor>()->data<float>()[0], 1.5f);
  const char bools[] = {0, 2, char(0xff)};
  Tensor b = *decode_dict(array_msg("|b1", {3}, std::string_view(bools, 3))).at("x").get_if<Tensor>();
  EXPECT_EQ(b.data<uint8_t>()[0], 0);
  EXPECT_EQ(b.data<uint8_t>()[1], 1);
  EXPECT_EQ(b.data<uint8_t>()[2], 1);
}

TEST(MsgpackNumpy, RejectsMalformedMsgpack) {
  std::string good = encode(Dict{{"a", make<float>(DType::F32, {2}, {1, 2})}});
  expect_reject(good.substr(0, good.size() - 3), "ends in the middle");
  expect_reject(good + "x", "trailing bytes");
  expect_reject("", "ends in the middle");
  expect_reject(std::string("\xc1", 1), "malformed msgpack");  // 0xc1 is never used
  expect_reject(Raw().arr(1).i(1).out, "expected a msgpack map");
  expect_reject(array_msg("<f4", {1}, "abcd").substr(3), "expected a msgpack map");  // a bare ndarray
}

TEST(MsgpackNumpy, RejectsBadDtypes) {
  expect_reject(array_msg("<c8", {1}, std::string(8, 0)), "complex");
  expect_reject(array_msg("|O", {1}, std::string(8, 0)), "object");
  expect_reject(array_msg("|O8", {1}, std::string(8, 0)), "object");
  expect_reject(array_msg("|i4", {1}, std::string(4, 0)), "|' byte order on a multi-byte");
  expect_reject(array_msg("<f", {1}, std::string(4, 0)), "not a numpy dtype");
  expect_reject(array_msg("<V2", {1}, std::string(2, 0)), "bfloat16");
  expect_reject(array_msg("<U3", {1}, std::string(12, 0)), "string arrays");
  expect_reject(array_msg("<u8", {1}, std::string(8, 0)), "unsupported dtype");
  expect_reject(array_msg("<f3", {1}, std::string(3, 0)), "unsupported dtype");
  expect_reject(array_msg("|f4", {1}, std::string(4, 0)), "byte order");
  expect_reject(array_msg("float32", {1}, std::string(4, 0)), "not a numpy dtype");
  expect_reject(array_msg("#f4", {1}, std::string(4, 0)), "byte order");
  expect_reject(array_msg("<M8", {1}, std::string(8, 0)), "datetime");
}

TEST(MsgpackNumpy, RejectsShapeDataMismatch) {
  expect_reject(array_msg("<f4", {2, 3}, std::string(23, 0)), "does not match shape [2, 3]");
  expect_reject(array_msg("<f4", {2, 3}, std::string(25, 0)), "expected 24 bytes, got 25 bytes");
  expect_reject(array_msg("<f8", {int64_t(1) << 62, 1 << 10}, std::string(8, 0)), "representable");
  expect_reject(array_msg("<f4", {-1}, std::string(4, 0)), "non-negative");
  std::vector<int64_t> many(33, 1);
  expect_reject(array_msg("|u1", many, std::string(1, 0)), "too many dimensions");
  // A zero-sized dimension with no data is a valid empty array, whatever the other dimensions are.
  EXPECT_EQ(decode_dict(array_msg("<f4", {0, int64_t(1) << 40}, "")).at("x").get_if<Tensor>()->numel(), 0);
}

TEST(MsgpackNumpy, RejectsMissingWrongAndExtraArrayKeys) {
  auto arr = [](std::function<void(Raw&)> body, uint32_t n) {
    Raw r;
    r.map(1).str("x").map(n);
    body(r);
    return r.out;
  };
  expect_reject(arr([](Raw& r) { r.bin("__ndarray__").b(true).bin("dtype").str("<f4").bin("shape").arr(0); }, 3), "lacks 'data'");
  expect_reject(arr([](Raw& r) { r.bin("__ndarray__").b(true).bin("data").bin("abcd").bin("shape").arr(0); }, 3), "lacks 'dtype'");
  expect_reject(arr([](Raw& r) { r.bin("__ndarray__").b(true).bin("data").bin("abcd").bin("dtype").str("<f4"); }, 3), "lacks 'shape'");
  expect_reject(arr([](Raw& r) { r.bin("__ndarray__").b(false).bin("data").bin("abcd").bin("dtype").str("<f4").bin("shape").arr(0); }, 4), "must be true");
  expect_reject(arr([](Raw& r) { r.bin("__ndarray__").b(true).bin("data").str("abcd").bin("dtype").str("<f4").bin("shape").arr(0); }, 4), "'data' must be bin");
  expect_reject(arr([](Raw& r) { r.bin("__ndarray__").b(true).bin("data").bin("abcd").bin("dtype").i(4).bin("shape").arr(0); }, 4), "'dtype' must be a str");
  expect_reject(arr([](Raw& r) { r.bin("__ndarray__").b(true).bin("data").bin("abcd").bin("dtype").str("<f4").bin("shape").i(1); }, 4), "'shape' must be an array");
  expect_reject(arr([](Raw& r) { r.bin("__ndarray__").b(true).bin("data").bin("abcd").bin("dtype").str("<f4").bin("shape").arr(1).f(1.0); }, 4), "non-negative ints");
  expect_reject(arr([](Raw& r) { r.bin("__ndarray__").b(true).bin("data").bin("abcd").bin("dtype").str("<f4").bin("shape").arr(0).bin("extra").i(1); }, 5), "unexpected key 'extra'");
  expect_reject(arr([](Raw& r) { r.bin("__ndarray__").b(true).bin("data").bin("abcd").bin("data").bin("abcd").bin("dtype").str("<f4").bin("shape").arr(0); }, 5), "duplicate key 'data'");
  expect_reject(arr([](Raw& r) { r.bin("__ndarray__").b(true).str("data").bin("abcd").bin("dtype").str("<f4").bin("shape").arr(0); }, 4), "keys must all be bin");
  // str marker keys: what a C++ client gets wrong; openpi would not recognise the array.
  expect_reject(arr([](Raw& r) { r.str("__ndarray__").b(true).str("data").bin("abcd").str("dtype").str("<f4").str("shape").arr(0); }, 4), "needs the array marker keys as bin");
}

TEST(MsgpackNumpy, RejectsBadScalars) {
  auto scalar = [](std::string_view dtype, std::function<void(Raw&)> data) {
    Raw r;
    r.map(1).str("x").map(3).bin("__npgeneric__").b(true).bin("data");
    data(r);
    r.bin("dtype").str(dtype);
    return r.out;
  };
  expect_reject(scalar("<f8", [](Raw& r) { r.str("1.0"); }), "does not match dtype '<f8'");
  expect_reject(scalar("|b1", [](Raw& r) { r.i(1); }), "does not match dtype '|b1'");
  expect_reject(scalar("|u1", [](Raw& r) { r.i(256); }), "out of range");
  expect_reject(scalar("|u1", [](Raw& r) { r.i(-1); }), "out of range");
  expect_reject(scalar("|i1", [](Raw& r) { r.i(-129); }), "out of range");
  expect_reject(scalar("<i4", [](Raw& r) { r.i(int64_t(1) << 31); }), "out of range");
  expect_reject(scalar("<c16", [](Raw& r) { r.f(1.0); }), "complex");
  EXPECT_EQ(decode_dict(scalar("|i1", [](Raw& r) { r.i(-128); })).at("x").get_if<Tensor>()->data<int32_t>()[0], -128);
  EXPECT_EQ(*decode_dict(scalar("<U5", [](Raw& r) { r.str("hello"); })).at("x").get_if<std::string>(), "hello");
  EXPECT_EQ(decode_dict(scalar("<f8", [](Raw& r) { r.i(3); })).at("x").get_if<Tensor>()->data<double>()[0], 3.0);
}

TEST(MsgpackNumpy, RejectsBadMapsAndValues) {
  expect_reject(Raw().map(1).i(1).i(2).out, "map key must be str");
  expect_reject(Raw().map(2).str("a").i(1).str("a").i(2).out, "duplicate map key 'a'");
  expect_reject(Raw().map(1).bin("prompt").str("x").out, "is msgpack bin; dict keys must be str");
  expect_reject(Raw().map(1).str("prompt").bin("\xff\xfe").out, "must be UTF-8 text");
  expect_reject(Raw().map(1).str("p").str("\xff\xfe").out, "not valid UTF-8");
  expect_reject(Raw().map(1).str("p").str("\xed\xa0\x80").out, "not valid UTF-8");  // a surrogate
  expect_reject(Raw().map(1).str("p").str("\xc0\xaf").out, "not valid UTF-8");      // overlong
  std::string ext = Raw().map(1).str("e").out + std::string("\xd4\x01\x00", 3);     // fixext1
  expect_reject(ext, "size limit");
  std::string big = Raw().map(1).str("n").out + std::string("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9);
  expect_reject(big, "does not fit in int64");
  // The error names where in the message the problem is.
  expect_reject(Raw().map(1).str("obs").map(1).str("observation/state").bin("\xc0").out, "message[\"obs\"][\"observation/state\"]");
}

// openpi clients may send the prompt as Python bytes: it decodes as the same text a str gives.
TEST(MsgpackNumpy, BytesPromptDecodesAsUtf8Text) {
  const std::string text = "pick up the caf\xc3\xa9 cup";
  const Dict as_bin = decode_dict(Raw().map(1).str("prompt").bin(text).out);
  const Dict as_str = decode_dict(Raw().map(1).str("prompt").str(text).out);
  ASSERT_TRUE(as_bin.at("prompt").is<std::string>());
  EXPECT_EQ(*as_bin.at("prompt").get_if<std::string>(), text);
  EXPECT_EQ(encode(as_bin), encode(as_str));
  expect_reject(Raw().map(1).str("prompt").bin("caf\xe9").out, "message[\"prompt\"]");  // Latin-1, not UTF-8
  serve::DecodeLimits lim;
  lim.max_string = 4;
  expect_reject(Raw().map(1).str("p").bin("hello").out, "bytes text too long", lim);  // key within the limit
}

TEST(MsgpackNumpy, EnforcesNestingAndSizeLimits) {
  serve::DecodeLimits lim;
  lim.max_depth = 4;
  lim.max_container = 8;
  lim.max_string = 16;
  Raw deep;
  deep.map(1).str("a").map(1).str("b").map(1).str("c").map(1).str("d").map(1).str("e").i(1);
  expect_reject(deep.out, "nests deeper than 4 levels", lim);
  Raw wide;
  wide.map(1).str("a").arr(9);
  for (int i = 0; i < 9; ++i) wide.i(i);
  expect_reject(wide.out, "an array of more than 8 entries", lim);
  // The limit is named in words, not msgpack-cxx's "str size overflow".
  expect_reject(Raw().map(1).str("p").str(std::string(17, 'x')).out, "a string longer than 16 bytes", lim);
  // A declared container size far beyond the bytes present is an error, not an allocation.
  expect_reject(Raw().map(1).str("a").out + std::string("\xdd\xff\xff\xff\xff", 5), "an array of more than 4096");
  expect_reject(std::string("\xdf\x7f\xff\xff\xff", 5), "a map of more than 4096");
  // Default depth limit: 33 nested arrays.
  Raw d33;
  d33.map(1).str("a");
  for (int i = 0; i < 33; ++i) d33.arr(1);
  d33.i(0);
  expect_reject(d33.out, "nests deeper than 32 levels");
}
