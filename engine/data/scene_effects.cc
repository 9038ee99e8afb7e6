#include "engine/data/scene_effects.h"

#include <array>
#include <cstdint>
#include <opencv2/imgproc.hpp>

#include "engine/data/cityscapes.h"
#include "engine/data/random.h"

namespace segqat::data::scene {

namespace cs = cityscapes;

void ApplyCameraEffects(Canvas& canvas, std::mt19937& rng) {
  std::array<float, 256> grain{}, blotch{};
  grain.fill(3), blotch.fill(3);
  grain[cs::kVegetation] = 10, blotch[cs::kVegetation] = 22;
  grain[cs::kTerrain] = 16, blotch[cs::kTerrain] = 12;
  grain[cs::kRoad] = 5, blotch[cs::kRoad] = 4;
  grain[cs::kSidewalk] = 4, blotch[cs::kSidewalk] = 5;
  grain[cs::kBuilding] = 3, blotch[cs::kBuilding] = 7;
  grain[cs::kWall] = 6, blotch[cs::kWall] = 6;
  grain[cs::kSky] = 1, blotch[cs::kSky] = 4;

  const cv::Size size = canvas.size();
  cv::RNG noise_rng(Draw64(rng));
  cv::Mat fine(size, CV_32FC1), coarse(size.height / 8 + 2, size.width / 8 + 2, CV_32FC1);
  noise_rng.fill(fine, cv::RNG::NORMAL, 0, 1);
  noise_rng.fill(coarse, cv::RNG::NORMAL, 0, 1);
  cv::resize(coarse, coarse, size, 0, 0, cv::INTER_LINEAR);
  const double sigma = UniformReal(rng, 2, 6);
  cv::Mat sensor(size, CV_32FC3);
  noise_rng.fill(sensor, cv::RNG::NORMAL, 0, sigma);

  const float contrast = static_cast<float>(UniformReal(rng, 0.85, 1.15));
  const float brightness = static_cast<float>(UniformReal(rng, -18, 18));
  std::array<float, 3> gain;
  for (float& g : gain) g = static_cast<float>(UniformReal(rng, 0.92, 1.08));
  cv::Mat& image = canvas.image();
  const cv::Mat& label = canvas.label();
  for (int y = 0; y < size.height; ++y) {
    uint8_t* px = image.ptr<uint8_t>(y);
    const uint8_t* id = label.ptr<uint8_t>(y);
    const float* f = fine.ptr<float>(y);
    const float* b = coarse.ptr<float>(y);
    const float* n = sensor.ptr<float>(y);
    for (int x = 0; x < size.width; ++x) {
      const float texture = f[x] * grain[id[x]] + b[x] * blotch[id[x]];
      for (int c = 0; c < 3; ++c) {
        const float v =
            ((px[3 * x + c] + texture - 128.0f) * contrast + 128.0f + brightness) * gain[c] +
            n[3 * x + c];
        px[3 * x + c] = cv::saturate_cast<uint8_t>(v);
      }
    }
  }
  if (Bernoulli(rng, 0.4)) {
    cv::GaussianBlur(image, image, cv::Size(3, 3), UniformReal(rng, 0.5, 0.9));
  }
}

}  // namespace segqat::data::scene
