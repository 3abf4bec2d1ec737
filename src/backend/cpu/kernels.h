// Row kernels of the cpu backend: AVX-512 versions chosen at run time, AVX2 ones for the norms
// and the softmax exponent where the CPU has only AVX2 + FMA, plain C++ otherwise (any x86-64). All take and give f32 except the bf16 conversions.
#pragma once
#include <cstdint>

namespace pi0::cpu {

bool has_avx512();
// AVX2 and FMA: what the AVX2 kernels (int8 GEMM, row kernels, Hadamard) need. PI0_CPU_ISA does
// not cap it (it only removes AVX-512).
bool has_avx2_fma();
// AVX-VNNI (the VEX vpdpbusd on ymm) with AVX2 and FMA; not capped by PI0_CPU_ISA either. Read from
// CPUID (leaf 7, subleaf 1, EAX bit 4): clang's __builtin_cpu_supports does not know "avxvnni".
bool has_avx_vnni();

// The environment variable PI0_CPU_ISA caps the instruction sets the cpu backend uses: unset or
// "native" = everything this CPU has; "avx2" = no AVX-512 anywhere (our kernels take their
// portable paths, oneDNN is capped at AVX2 and so runs the fp32 GEMMs), which lets the tests
// check the non-AVX-512 code on an AVX-512 machine. Anything else is an error.
bool isa_allows_avx512();

// y = bf16(x) with round-to-nearest-even, n elements.
void to_bf16(const float* x, int64_t n, uint16_t* y);
// y = bf16(x · s).
void to_bf16_scaled(const float* x, int64_t n, float s, uint16_t* y);
// y = x / sqrt(mean(x²) + eps) · (1 + scale) [+ shift]
void rms_norm_row(const float* x, int64_t n, const float* scale, const float* shift, float eps, float* y);
// y = (x − mean) / sqrt(var + eps) · w + b
void layer_norm_row(const float* x, int64_t n, const float* w, const float* b, float eps, float* y);
// In place: x = exp(x − sub); returns the sum. Values below −87 after the shift become exactly 0.
float exp_sum_row(float* x, int64_t n, float sub);
// One attention row: logits of keys that are invalid (k_valid[j] == 0) or in a later block
// (k_group[j] > q_group) become mask_value (null arrays: every key valid, group 0); returns the
// row's max. Setting (not adding) mask_value equals f32 logit + mask_value for finite logits.
float mask_max_row(float* l, int64_t n, const uint8_t* k_valid, const int32_t* k_group, int32_t q_group,
                   float mask_value);
// h = bf16(bf16_to_f32(g) · bf16_to_f32(u)) over n bf16 values (GeGLU's product, in place allowed).
void mul_bf16(const uint16_t* g, const uint16_t* u, int64_t n, uint16_t* h);

}  // namespace pi0::cpu
