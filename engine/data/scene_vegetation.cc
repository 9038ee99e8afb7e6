// Trees and hedges (vegetation).
#include <algorithm>
#include <array>
#include <vector>

#include "engine/data/cityscapes.h"
#include "engine/data/random.h"
#include "engine/data/scene_objects.h"

namespace segqat::data::scene {

using cityscapes::kVegetation;

void DrawTree(Canvas& canvas, const Camera& camera, std::mt19937& rng, double x, double z,
              double canopy_y, double canopy_r) {
  static constexpr std::array<Rgb, 5> kLeaves = {
      {{60, 100, 40}, {76, 114, 46}, {50, 84, 36}, {96, 124, 56}, {70, 92, 50}}};
  const double scale = camera.Scale(z);
  const double trunk_w = std::max(1.5, UniformReal(rng, 0.25, 0.45) * scale);
  canvas.FillLine(camera.Project(x, 0, z), camera.Project(x, canopy_y, z), trunk_w,
                  Jitter(rng, {88, 70, 52}, 12), kVegetation);
  const Color leaves = Jitter(rng, Pick(rng, kLeaves), 10);
  for (int i = UniformIntIn(rng, 10, 18); i > 0; --i) {
    const double dx = UniformReal(rng, -0.65, 0.65) * canopy_r;
    const double dy = UniformReal(rng, -0.5, 0.6) * canopy_r;
    canvas.FillCircle(camera.Project(x + dx, canopy_y + dy, z),
                      UniformReal(rng, 0.35, 0.6) * canopy_r * scale,
                      Shade(leaves, UniformReal(rng, 0.75, 1.2)), kVegetation);
  }
}

void DrawHedge(Canvas& canvas, const Camera& camera, std::mt19937& rng, double x, double z0,
               double z1, double height) {
  const Color leaves = Jitter(rng, {58, 92, 40}, 12);
  canvas.Fill(SideQuad(camera, x, z0, z1, 0, height), leaves, kVegetation);
  // A bumpy top made of leaf balls.
  const double step = std::max(0.5, height * 0.6);
  for (double z = z0; z < z1; z += step) {
    canvas.FillCircle(camera.Project(x, height, z), step * 0.6 * camera.Scale(z),
                      Shade(leaves, UniformReal(rng, 0.8, 1.15)), kVegetation);
  }
}

}  // namespace segqat::data::scene
