#include "engine/data/random.h"

namespace segqat::data {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// 32 random bits, in [0, 2^32).
uint64_t Next32(std::mt19937& rng) { return static_cast<uint64_t>(rng()) & 0xFFFFFFFFull; }

}  // namespace

uint64_t MixSeed(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t h = SplitMix64(a);
  h = SplitMix64(h ^ b);
  return SplitMix64(h ^ c);
}

std::mt19937 MakeRng(uint64_t seed) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  return std::mt19937(seq);
}

uint64_t Draw64(std::mt19937& rng) {
  const uint64_t high = Next32(rng);
  return high << 32 | Next32(rng);
}

int UniformInt(std::mt19937& rng, int n) {
  if (n <= 1) return 0;
  // Multiply-shift (Lemire); the bias is below n / 2^32, far under anything
  // augmentation can notice.
  return static_cast<int>((Next32(rng) * static_cast<uint64_t>(n)) >> 32);
}

int UniformIntIn(std::mt19937& rng, int lo, int hi) {
  if (hi <= lo) return lo;
  return lo + UniformInt(rng, hi - lo + 1);
}

double UniformReal(std::mt19937& rng, double lo, double hi) {
  const double u = static_cast<double>(Next32(rng)) * (1.0 / 4294967296.0);
  return lo + (hi - lo) * u;
}

bool Bernoulli(std::mt19937& rng, double p) {
  if (p <= 0.0) return false;
  if (p >= 1.0) return true;
  return UniformReal(rng, 0.0, 1.0) < p;
}

}  // namespace segqat::data
