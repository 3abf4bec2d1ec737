// A dynamically typed value tree: what an openpi observation or reply is (a dict of numpy arrays,
// strings, numbers and nested dicts). Embedders build observations with it and read replies from
// it (pi0/policy.h); the server's msgpack-numpy codec and the Python module convert to and from it.
//
//   pi0::Dict obs;
//   obs["observation/state"] = pi0::Tensor::from_f32({0, 0, 0, 0, 0, 0, 0, 0}, {8});
//   obs["prompt"] = "pick up the fork";
//   const pi0::Tensor* actions = reply.at("actions").get_if<pi0::Tensor>();
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "pi0/tensor.h"

namespace pi0 {

struct Value;
using Dict = std::map<std::string, Value>;
using List = std::vector<Value>;

struct Value {
  std::variant<std::monostate, bool, int64_t, double, std::string, Tensor, List, Dict> v;

  Value() = default;
  Value(bool b) : v(b) {}
  Value(int64_t i) : v(i) {}
  Value(int i) : v(static_cast<int64_t>(i)) {}
  Value(double d) : v(d) {}
  Value(std::string s) : v(std::move(s)) {}
  Value(const char* s) : v(std::string(s)) {}
  Value(Tensor t) : v(std::move(t)) {}
  Value(List l) : v(std::move(l)) {}
  Value(Dict d) : v(std::move(d)) {}

  bool is_null() const { return std::holds_alternative<std::monostate>(v); }
  template <class T> bool is() const { return std::holds_alternative<T>(v); }
  template <class T> const T* get_if() const { return std::get_if<T>(&v); }
  template <class T> T* get_if() { return std::get_if<T>(&v); }
};

}  // namespace pi0
