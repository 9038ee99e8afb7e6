#include "engine/infer/qtensor.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

namespace segqat::infer {
namespace {

constexpr int64_t kGrain = 1 << 16;

// The element loops below are built for AVX-512, AVX2 and the baseline and
// picked by the CPU at load time (the library is built for baseline x86-64).
// Every operation is IEEE-exact in each (no FMA: -ffp-contract=off), so all
// three compute the same codes.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SEGQAT_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SEGQAT_VECTOR_CLONES
#endif
// Adding and subtracting 1.5 * 2^23 rounds a float with |v| < 2^22 to the
// nearest integer, halves to even (the default rounding mode), branch-free.
constexpr float kRoundMagic = 12582912.0f;

// Codes lo..hi.
SEGQAT_VECTOR_CLONES
void QuantizeRange(const float* __restrict in, uint8_t* __restrict out, int64_t n, float step,
                   float lo, float hi, int32_t zero_point) {
  for (int64_t i = 0; i < n; ++i) {
    float v = std::min(std::max(in[i] / step, lo), hi);
    v = (v + kRoundMagic) - kRoundMagic;
    out[i] = static_cast<uint8_t>(static_cast<int32_t>(v) + zero_point);
  }
}

SEGQAT_VECTOR_CLONES
void DequantizeRange(const uint8_t* __restrict in, float* __restrict out, int64_t n, float step,
                     int32_t zero_point) {
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(static_cast<int32_t>(in[i]) - zero_point) * step;
  }
}

SEGQAT_VECTOR_CLONES
void CodesRange(const float* __restrict in, float* __restrict out, int64_t n, float step,
                float hi) {
  for (int64_t i = 0; i < n; ++i) {
    float v = std::min(std::max(in[i] / step, -hi), hi);
    out[i] = (v + kRoundMagic) - kRoundMagic;
  }
}

SEGQAT_VECTOR_CLONES
void RequantizeRange(const uint8_t* __restrict in, uint8_t* __restrict out, int64_t n,
                     float in_step, int32_t in_zero_point, float step, float lo, float hi,
                     int32_t zero_point) {
  for (int64_t i = 0; i < n; ++i) {
    const float x = static_cast<float>(static_cast<int32_t>(in[i]) - in_zero_point) * in_step;
    float v = std::min(std::max(x / step, lo), hi);
    v = (v + kRoundMagic) - kRoundMagic;
    out[i] = static_cast<uint8_t>(static_cast<int32_t>(v) + zero_point);
  }
}

SEGQAT_VECTOR_CLONES
void AddRange(const uint8_t* __restrict a, const uint8_t* __restrict b, uint8_t* __restrict out,
              int64_t n, float a_step, int32_t a_zero_point, float b_step, int32_t b_zero_point,
              float step, float lo, float hi, int32_t zero_point) {
  for (int64_t i = 0; i < n; ++i) {
    const float x = static_cast<float>(static_cast<int32_t>(a[i]) - a_zero_point) * a_step +
                    static_cast<float>(static_cast<int32_t>(b[i]) - b_zero_point) * b_step;
    float v = std::min(std::max(x / step, lo), hi);
    v = (v + kRoundMagic) - kRoundMagic;
    out[i] = static_cast<uint8_t>(static_cast<int32_t>(v) + zero_point);
  }
}

// y = a * m[k] + b[k] (separate roundings: this file is built with
// -ffp-contract=off), then the activation (0 none, 1 ReLU, 2 ReLU6).
template <int kAct>
inline float Epilogue(float a, float m, float b) {
  float y = a * m;
  y = y + b;
  if (kAct == 1) y = std::max(y, 0.f);
  if (kAct == 2) y = std::min(std::max(y, 0.f), 6.f);
  return y;
}

template <int kAct>
SEGQAT_VECTOR_CLONES void EpilogueRows(const float* __restrict src, float* __restrict dst,
                                       int64_t pixels, int64_t c, const float* __restrict m,
                                       const float* __restrict b) {
  for (int64_t p = 0; p < pixels; ++p) {
    for (int64_t k = 0; k < c; ++k) dst[p * c + k] = Epilogue<kAct>(src[p * c + k], m[k], b[k]);
  }
}

template <int kAct>
SEGQAT_VECTOR_CLONES void EpilogueQuantizeRows(const float* __restrict src, uint8_t* __restrict dst,
                                               int64_t pixels, int64_t c, const float* __restrict m,
                                               const float* __restrict b, float step, float lo,
                                               float hi, int32_t zero_point) {
  for (int64_t p = 0; p < pixels; ++p) {
    for (int64_t k = 0; k < c; ++k) {
      const float y = Epilogue<kAct>(src[p * c + k], m[k], b[k]);
      float v = std::min(std::max(y / step, lo), hi);
      v = (v + kRoundMagic) - kRoundMagic;
      dst[p * c + k] = static_cast<uint8_t>(static_cast<int32_t>(v) + zero_point);
    }
  }
}

void ClampRange(uint8_t* __restrict q, int64_t n, uint8_t lo, uint8_t hi) {
  for (int64_t i = 0; i < n; ++i) q[i] = std::min(std::max(q[i], lo), hi);
}

void CheckRange(int64_t zero_point, int64_t max_code) {
  TORCH_CHECK(max_code >= 1 && max_code <= 127 && (zero_point == 0 || zero_point == max_code + 1),
              "symmetric activations with codes up to ", max_code, " have zero point 0 or ",
              max_code + 1, ", not ", zero_point);
}

// (q - zero point) * step as float, in q's memory format (channels-last
// for a 4-D channels-last q).
at::Tensor DequantizeAt(const at::Tensor& q, float step) {
  const auto zero_point = static_cast<int32_t>(q.q_zero_point());
  const auto format = q.is_contiguous(at::MemoryFormat::ChannelsLast) && q.dim() == 4
                          ? at::MemoryFormat::ChannelsLast
                          : at::MemoryFormat::Contiguous;
  at::Tensor in = q.contiguous(format);
  at::Tensor out = at::empty(in.sizes(), at::TensorOptions().dtype(at::kFloat), format);
  const auto* src = reinterpret_cast<const uint8_t*>(in.data_ptr<c10::quint8>());
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, in.numel(), kGrain, [&](int64_t begin, int64_t end) {
    DequantizeRange(src + begin, dst + begin, end - begin, step, zero_point);
  });
  return out;
}

}  // namespace

at::Tensor QuantizeSymmetric(const at::Tensor& x, float step, int64_t zero_point,
                             int64_t max_code) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.dim() == 4 && step > 0,
              "QuantizeSymmetric takes a 4-D float tensor and a positive step");
  CheckRange(zero_point, max_code);
  const auto hi = static_cast<float>(max_code);
  // A contiguous (NCHW) input, like the image, is quantized as it lies and
  // the bytes are then moved to channels-last: a quarter of the traffic of
  // moving the floats first.
  const auto format = x.is_contiguous() && !x.is_contiguous(at::MemoryFormat::ChannelsLast)
                          ? at::MemoryFormat::Contiguous
                          : at::MemoryFormat::ChannelsLast;
  at::Tensor in = x.contiguous(format);
  at::Tensor q = at::_empty_affine_quantized(in.sizes(), at::TensorOptions().dtype(at::kQUInt8),
                                             step, zero_point, format);
  const float* src = in.data_ptr<float>();
  auto* dst = reinterpret_cast<uint8_t*>(q.data_ptr<c10::quint8>());
  at::parallel_for(0, in.numel(), kGrain, [&](int64_t begin, int64_t end) {
    QuantizeRange(src + begin, dst + begin, end - begin, step, zero_point == 0 ? 0.f : -hi, hi,
                  static_cast<int32_t>(zero_point));
  });
  return format == at::MemoryFormat::ChannelsLast ? q
                                                  : q.contiguous(at::MemoryFormat::ChannelsLast);
}

at::Tensor RequantizeSymmetric(const at::Tensor& q, float step, int64_t zero_point,
                               int64_t max_code) {
  TORCH_CHECK(q.scalar_type() == at::kQUInt8 && q.dim() == 4 && step > 0,
              "RequantizeSymmetric takes a 4-D quint8 tensor and a positive step");
  CheckRange(zero_point, max_code);
  at::Tensor in = q.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor out = at::_empty_affine_quantized(in.sizes(), at::TensorOptions().dtype(at::kQUInt8),
                                               step, zero_point, at::MemoryFormat::ChannelsLast);
  const auto* src = reinterpret_cast<const uint8_t*>(in.data_ptr<c10::quint8>());
  auto* dst = reinterpret_cast<uint8_t*>(out.data_ptr<c10::quint8>());
  const auto in_step = static_cast<float>(in.q_scale());
  const auto in_zero_point = static_cast<int32_t>(in.q_zero_point());
  const auto hi = static_cast<float>(max_code);
  at::parallel_for(0, in.numel(), kGrain, [&](int64_t begin, int64_t end) {
    RequantizeRange(src + begin, dst + begin, end - begin, in_step, in_zero_point, step,
                    zero_point == 0 ? 0.f : -hi, hi, static_cast<int32_t>(zero_point));
  });
  return out;
}

at::Tensor AddSymmetric(const at::Tensor& a, const at::Tensor& b, float step, int64_t zero_point,
                        int64_t max_code) {
  TORCH_CHECK(a.scalar_type() == at::kQUInt8 && b.scalar_type() == at::kQUInt8 && a.dim() == 4 &&
                  a.sizes() == b.sizes() && step > 0,
              "AddSymmetric takes two quint8 tensors of one 4-D shape and a positive step");
  CheckRange(zero_point, max_code);
  at::Tensor x = a.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor y = b.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor out = at::_empty_affine_quantized(x.sizes(), at::TensorOptions().dtype(at::kQUInt8),
                                               step, zero_point, at::MemoryFormat::ChannelsLast);
  const auto* pa = reinterpret_cast<const uint8_t*>(x.data_ptr<c10::quint8>());
  const auto* pb = reinterpret_cast<const uint8_t*>(y.data_ptr<c10::quint8>());
  auto* dst = reinterpret_cast<uint8_t*>(out.data_ptr<c10::quint8>());
  const auto a_step = static_cast<float>(x.q_scale()), b_step = static_cast<float>(y.q_scale());
  const auto a_zp = static_cast<int32_t>(x.q_zero_point()),
             b_zp = static_cast<int32_t>(y.q_zero_point());
  const auto hi = static_cast<float>(max_code);
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
    AddRange(pa + begin, pb + begin, dst + begin, end - begin, a_step, a_zp, b_step, b_zp, step,
             zero_point == 0 ? 0.f : -hi, hi, static_cast<int32_t>(zero_point));
  });
  return out;
}

at::Tensor DequantizeSymmetric(const at::Tensor& q) {
  TORCH_CHECK(q.scalar_type() == at::kQUInt8, "DequantizeSymmetric takes a quint8 tensor");
  return DequantizeAt(q, static_cast<float>(q.q_scale()));
}

at::Tensor CodesOf(const at::Tensor& x, float step, int64_t max_code) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.dim() == 4 && step > 0,
              "CodesOf takes a 4-D float tensor and a positive step");
  at::Tensor in = x.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor out = at::empty_like(in, at::MemoryFormat::ChannelsLast);
  const float* src = in.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, in.numel(), kGrain, [&](int64_t begin, int64_t end) {
    CodesRange(src + begin, dst + begin, end - begin, step, static_cast<float>(max_code));
  });
  return out;
}

at::Tensor CodesOf(const at::Tensor& q) {
  TORCH_CHECK(q.scalar_type() == at::kQUInt8 && q.dim() == 4, "CodesOf takes a 4-D quint8 tensor");
  return DequantizeAt(q.contiguous(at::MemoryFormat::ChannelsLast), 1.0f);
}

namespace {

// The sums as channels-last float and the per-channel vectors, checked.
struct EpilogueArgs {
  at::Tensor acc, mul, bias;
  int64_t pixels = 0, channels = 0;
};

EpilogueArgs CheckEpilogue(const at::Tensor& acc, const at::Tensor& mul, const at::Tensor& bias) {
  TORCH_CHECK(acc.scalar_type() == at::kFloat && acc.dim() == 4,
              "the conv epilogue takes 4-D float sums");
  EpilogueArgs e;
  e.acc = acc.contiguous(at::MemoryFormat::ChannelsLast);
  e.channels = acc.size(1);
  e.pixels = acc.numel() / std::max<int64_t>(1, e.channels);
  e.mul = mul.reshape({-1}).to(at::kFloat).contiguous();
  e.bias = bias.reshape({-1}).to(at::kFloat).contiguous();
  TORCH_CHECK(e.mul.numel() == e.channels && e.bias.numel() == e.channels,
              "the conv epilogue takes one multiplier and one bias per channel");
  return e;
}

}  // namespace

at::Tensor ScaleBiasActivate(const at::Tensor& acc, const at::Tensor& mul, const at::Tensor& bias,
                             int act) {
  EpilogueArgs e = CheckEpilogue(acc, mul, bias);
  at::Tensor out = at::empty_like(e.acc, at::MemoryFormat::ChannelsLast);
  const float* src = e.acc.data_ptr<float>();
  const float* m = e.mul.data_ptr<float>();
  const float* b = e.bias.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  const int64_t c = e.channels;
  auto rows = act == 1 ? EpilogueRows<1> : act == 2 ? EpilogueRows<2> : EpilogueRows<0>;
  at::parallel_for(0, e.pixels, std::max<int64_t>(1, kGrain / c), [&](int64_t begin, int64_t end) {
    rows(src + begin * c, dst + begin * c, end - begin, c, m, b);
  });
  return out;
}

at::Tensor ScaleBiasActivateQuantize(const at::Tensor& acc, const at::Tensor& mul,
                                     const at::Tensor& bias, int act, float step,
                                     int64_t zero_point, int64_t max_code) {
  TORCH_CHECK(step > 0, "the conv epilogue quantizes at a positive step");
  CheckRange(zero_point, max_code);
  EpilogueArgs e = CheckEpilogue(acc, mul, bias);
  at::Tensor q = at::_empty_affine_quantized(e.acc.sizes(), at::TensorOptions().dtype(at::kQUInt8),
                                             step, zero_point, at::MemoryFormat::ChannelsLast);
  const float* src = e.acc.data_ptr<float>();
  const float* m = e.mul.data_ptr<float>();
  const float* b = e.bias.data_ptr<float>();
  auto* dst = reinterpret_cast<uint8_t*>(q.data_ptr<c10::quint8>());
  const int64_t c = e.channels;
  const float hi = static_cast<float>(max_code), lo = zero_point == 0 ? 0.f : -hi;
  const auto zp = static_cast<int32_t>(zero_point);
  auto rows = act == 1   ? EpilogueQuantizeRows<1>
              : act == 2 ? EpilogueQuantizeRows<2>
                         : EpilogueQuantizeRows<0>;
  at::parallel_for(0, e.pixels, std::max<int64_t>(1, kGrain / c), [&](int64_t begin, int64_t end) {
    rows(src + begin * c, dst + begin * c, end - begin, c, m, b, step, lo, hi, zp);
  });
  return q;
}

void ClampToSymmetricRange(at::Tensor& q, int64_t max_code) {
  TORCH_CHECK(q.scalar_type() == at::kQUInt8 && q.is_contiguous(q.suggest_memory_format()),
              "ClampToSymmetricRange takes a dense quint8 tensor");
  CheckRange(q.q_zero_point(), max_code);
  const auto lo = static_cast<uint8_t>(q.q_zero_point() == 0 ? 0 : 1);
  const auto hi = static_cast<uint8_t>(q.q_zero_point() + max_code);
  auto* data = reinterpret_cast<uint8_t*>(q.data_ptr<c10::quint8>());
  at::parallel_for(0, q.numel(), kGrain, [&](int64_t begin, int64_t end) {
    ClampRange(data + begin, end - begin, lo, hi);
  });
}

}  // namespace segqat::infer
