// Portable random helpers for the data layer.
//
// The standard distributions (std::uniform_int_distribution, ...) are
// implementation-defined, so the same seed could give different crops,
// shuffles or synthetic scenes with another standard library. Everything in
// this layer draws through these helpers instead; std::mt19937's output
// sequence and std::seed_seq are fully specified by the standard.
//
// Thread safety: the functions are pure or touch only the rng passed in.
#ifndef SEGQAT_ENGINE_DATA_RANDOM_H_
#define SEGQAT_ENGINE_DATA_RANDOM_H_

#include <cstdint>
#include <random>

namespace segqat::data {

// Mixes up to three values into one well-spread 64-bit seed (SplitMix64
// finalizer applied after each value). Different argument tuples give
// unrelated results.
uint64_t MixSeed(uint64_t a, uint64_t b = 0, uint64_t c = 0);

// A std::mt19937 seeded with all 64 bits of `seed` through std::seed_seq.
std::mt19937 MakeRng(uint64_t seed);

// 64 random bits (two draws, high word first).
uint64_t Draw64(std::mt19937& rng);

// Uniform integer in [0, n). REQUIRES: n >= 1.
int UniformInt(std::mt19937& rng, int n);

// Uniform integer in [lo, hi], both inclusive. REQUIRES: lo <= hi.
int UniformIntIn(std::mt19937& rng, int lo, int hi);

// Uniform double in [lo, hi).
double UniformReal(std::mt19937& rng, double lo, double hi);

// True with probability p (p <= 0: never, p >= 1: always).
bool Bernoulli(std::mt19937& rng, double p);

}  // namespace segqat::data

#endif  // SEGQAT_ENGINE_DATA_RANDOM_H_
