// Recorded cases (golden README §4): read a case file's inputs, run sampling and the training
// forward with every named intermediate captured, and compare tensors the way the goldens do.
#pragma once
#include <map>
#include <string>

#include "io/safetensors.h"
#include "model/pi0_model.h"

namespace pi0 {

// Inputs named image.<camera>, image_mask.<camera>, tokens, token_mask, state, noise.
ModelInputs inputs_from_case(const SafeTensorsFile& f, const ModelConfig& c);

// Every output of sampling (named intermediates included) and, when the case holds `actions`
// and `time`, of the training forward (train_velocity, train_loss). num_steps from the case's
// metadata when present.
std::map<std::string, Tensor> replay_case(const Pi0Model& model, const SafeTensorsFile& f);

struct Comparison {
  double pcc = 0, max_abs = 0, max_ref = 0;
  int64_t compared = 0;  // elements compared
  double rel() const { return max_ref > 0 ? max_abs / max_ref : max_abs; }
};
// Pearson correlation and max |got − expected| over all elements (or only where `row_mask`,
// one flag per leading row group of `row_size` elements, is set).
Comparison compare_tensors(const Tensor& expected, const Tensor& got, const uint8_t* row_mask = nullptr,
                           int64_t row_size = 0);

}  // namespace pi0
