// The value tree moved to the public API (include/pi0/value.h): embedders build observations with
// it. This forwarder keeps the library's "core/value.h" includes valid.
#pragma once
#include "pi0/value.h"
