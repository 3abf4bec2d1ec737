// Recorded cases (tests/data/golden/README.md, section "A case file"): read a case file's inputs, run sampling and the training
// forward with every named intermediate captured (compared with core/compare.h).
#pragma once
#include <map>
#include <string>

#include "core/compare.h"
#include "io/safetensors.h"
#include "model/pi0_model.h"

namespace pi0 {

// Inputs named image.<camera>, image_mask.<camera>, tokens, token_mask, state, noise.
ModelInputs inputs_from_case(const SafeTensorsFile& f, const ModelConfig& c);

// Every output of sampling (named intermediates included) and, when the case holds `actions`
// and `time`, of the training forward (train_velocity, train_loss). num_steps from the case's
// metadata when present.
std::map<std::string, Tensor> replay_case(const Pi0Model& model, const SafeTensorsFile& f);

}  // namespace pi0
