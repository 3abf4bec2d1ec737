#pragma once
#include <memory>

#include "backend/ops.h"

namespace pi0 {
std::unique_ptr<Backend> make_reference_backend();
}
