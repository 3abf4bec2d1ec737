#include <gtest/gtest.h>
#include "pi0/tensor.h"
TEST(Smoke, Builds) { EXPECT_EQ(pi0::dtype_size(pi0::DType::BF16), 2u); }
