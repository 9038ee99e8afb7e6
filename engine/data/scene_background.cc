#include "engine/data/scene_background.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/data/cityscapes.h"
#include "engine/data/random.h"

namespace segqat::data::scene {
namespace {

using cityscapes::kRoad;
using cityscapes::kSidewalk;
using cityscapes::kTerrain;

void DrawSidewalk(Canvas& canvas, const StreetLayout& layout, int side, std::mt19937& rng) {
  static constexpr std::array<Rgb, 5> kPaving = {
      {{150, 146, 140}, {170, 160, 150}, {128, 126, 130}, {160, 150, 135}, {140, 120, 115}}};
  const Camera& cam = layout.camera;
  const double curb = layout.Curb(side);
  const double edge = layout.WalkEdge(side);
  const double x0 = std::min(curb, edge), x1 = std::max(curb, edge);
  const Color paving = Jitter(rng, Pick(rng, kPaving), 10);
  canvas.Fill(GroundQuad(cam, x0, x1, layout.near_z, layout.far_z), paving, kSidewalk);
  if (!layout.Grass(side)) {  // paved up to the facades
    const double outer = layout.Facade(side) + side * 40;
    canvas.Fill(
        GroundQuad(cam, std::min(edge, outer), std::max(edge, outer), layout.near_z, layout.far_z),
        Shade(paving, 0.95), kSidewalk);
  }
  // Paving seams across the sidewalk while they are at least a few pixels apart.
  const double tile = UniformReal(rng, 1.2, 2.5);
  const Color seam = Shade(paving, 0.8);
  for (double z = layout.near_z + UniformReal(rng, 0, tile); z < layout.far_z; z += tile) {
    if (cam.Scale(z) * tile < 4) break;
    canvas.PaintLine(cam.Project(x0, 0, z), cam.Project(x1, 0, z), 1.0, seam);
  }
  const double strip = layout.Strip(side);
  if (strip > 0) {
    const double inner = layout.WalkInner(side);
    canvas.Fill(
        GroundQuad(cam, std::min(curb, inner), std::max(curb, inner), layout.near_z, layout.far_z),
        Jitter(rng, {96, 124, 58}, 15), kTerrain);
  }
  // The curb stone (sidewalk, also in front of a grass strip).
  const double stone = curb + side * 0.25;
  canvas.Fill(
      GroundQuad(cam, std::min(curb, stone), std::max(curb, stone), layout.near_z, layout.far_z),
      Shade(paving, Bernoulli(rng, 0.5) ? 1.18 : 0.85), kSidewalk);
}

void DrawRoad(Canvas& canvas, const StreetLayout& layout, std::mt19937& rng) {
  static constexpr std::array<Rgb, 5> kAsphalt = {
      {{78, 78, 82}, {92, 90, 95}, {66, 68, 72}, {105, 102, 104}, {84, 80, 86}}};
  const Camera& cam = layout.camera;
  const double l = layout.road_left, r = layout.road_right;
  const double near = layout.near_z, far = layout.far_z;
  const Color asphalt = Jitter(rng, Pick(rng, kAsphalt), 6);
  canvas.Fill(GroundQuad(cam, l, r, near, far), asphalt, kRoad);

  for (int i = UniformInt(rng, 4); i > 0; --i) {  // patched asphalt
    const double x = UniformReal(rng, l, r - 1.5), z = UniformReal(rng, 4, 40);
    canvas.Paint(
        GroundQuad(cam, x, std::min(r, x + UniformReal(rng, 1, 3)), z, z + UniformReal(rng, 2, 8)),
        Shade(asphalt, UniformReal(rng, 0.8, 1.15)));
  }
  if (layout.rails) {
    for (double dx : {-0.72, 0.72}) {
      const double x = layout.rails_x + dx;
      canvas.Paint(GroundQuad(cam, x - 0.05, x + 0.05, near, far), Shade(asphalt, 1.6));
    }
  }
  const Color paint =
      Bernoulli(rng, 0.2) ? Jitter(rng, {225, 200, 90}, 10) : Jitter(rng, {228, 228, 222}, 8);
  const double w = UniformReal(rng, 0.12, 0.16);
  for (double x : {l + 0.3, r - 0.3}) {  // edge lines
    canvas.Paint(GroundQuad(cam, x - w / 2, x + w / 2, near, far), paint);
  }
  const int lanes = std::max(2, static_cast<int>(std::lround((r - l) / 3.3)));
  const double dash = UniformReal(rng, 2.5, 4), period = dash + UniformReal(rng, 4, 8);
  for (int k = 1; k < lanes; ++k) {
    const double x = l + (r - l) * k / lanes;
    for (double z = near + UniformReal(rng, 0, period); z < far; z += period) {
      canvas.Paint(GroundQuad(cam, x - w / 2, x + w / 2, z, z + dash), paint);
    }
  }
  if (layout.crosswalk) {
    const double z = layout.crosswalk_z;
    for (double x = l + 0.4; x + 0.5 < r - 0.3; x += 1.0) {
      canvas.Paint(GroundQuad(cam, x, x + 0.5, z, z + 3.5), paint);
    }
  }
}

}  // namespace

StreetLayout RandomLayout(cv::Size size, std::mt19937& rng) {
  StreetLayout layout;
  Camera& cam = layout.camera;
  cam.focal = size.width * UniformReal(rng, 0.75, 1.0);
  cam.horizon = size.height * UniformReal(rng, 0.36, 0.46);
  cam.cx = size.width * UniformReal(rng, 0.42, 0.58);
  cam.height = UniformReal(rng, 1.2, 1.45);
  const double road = UniformReal(rng, 7, 13);
  layout.road_left = -road * UniformReal(rng, 0.55, 0.75);
  layout.road_right = layout.road_left + road;
  if (Bernoulli(rng, 0.3)) layout.strip_left = UniformReal(rng, 1.0, 2.2);
  if (Bernoulli(rng, 0.3)) layout.strip_right = UniformReal(rng, 1.0, 2.2);
  layout.walk_left = layout.road_left - layout.strip_left - UniformReal(rng, 2.0, 4.5);
  layout.walk_right = layout.road_right + layout.strip_right + UniformReal(rng, 2.0, 4.5);
  layout.grass_left = Bernoulli(rng, 0.5);
  layout.grass_right = Bernoulli(rng, 0.5);
  if (!layout.grass_left && !layout.grass_right && Bernoulli(rng, 0.8)) {
    (Bernoulli(rng, 0.5) ? layout.grass_left : layout.grass_right) = true;
  }
  auto verge = [&](bool grass) {
    return grass ? UniformReal(rng, 2.5, 6.0) : UniformReal(rng, 0.0, 1.5);
  };
  layout.facade_left = layout.walk_left - verge(layout.grass_left);
  layout.facade_right = layout.walk_right + verge(layout.grass_right);
  layout.far_z = UniformReal(rng, 110, 200);
  layout.crosswalk = Bernoulli(rng, 0.3);
  layout.crosswalk_z = UniformReal(rng, 9, 25);
  return layout;
}

void DrawSky(Canvas& canvas, const StreetLayout& layout, std::mt19937& rng) {
  const bool overcast = Bernoulli(rng, 0.35);
  const Color top = overcast ? Jitter(rng, {150, 158, 170}, 15) : Jitter(rng, {55, 105, 185}, 20);
  const Color low = overcast ? Jitter(rng, {210, 212, 216}, 10) : Jitter(rng, {165, 195, 225}, 15);
  const double horizon = std::max(layout.camera.horizon, 1.0);
  const int rows = std::min(canvas.size().height, static_cast<int>(horizon) + 2);
  for (int y = 0; y < rows; ++y) {
    canvas.image().row(y).setTo(Mix(top, low, std::min(1.0, y / horizon)));
  }
  const int clouds = overcast ? UniformIntIn(rng, 3, 6) : UniformInt(rng, 5);
  const double w = canvas.size().width;
  for (int c = 0; c < clouds; ++c) {
    const cv::Point2d center(UniformReal(rng, 0, w), UniformReal(rng, 0, horizon * 0.7));
    const Color color = Mix(low, {245, 245, 248}, overcast ? 0.25 : 0.8);
    for (int puff = UniformIntIn(rng, 3, 6); puff > 0; --puff) {
      const cv::Point2d offset(UniformReal(rng, -0.07, 0.07) * w,
                               UniformReal(rng, -0.02, 0.02) * w);
      canvas.PaintCircle(center + offset, UniformReal(rng, 0.02, 0.06) * w, Jitter(rng, color, 6));
    }
  }
}

void DrawGround(Canvas& canvas, const StreetLayout& layout, std::mt19937& rng) {
  const cv::Size size = canvas.size();
  const double h = layout.camera.horizon;
  canvas.Fill({{0, h},
               {double(size.width), h},
               {double(size.width), double(size.height) + 1},
               {0, double(size.height) + 1}},
              Jitter(rng, {92, 118, 55}, 15), kTerrain);
  DrawSidewalk(canvas, layout, -1, rng);
  DrawSidewalk(canvas, layout, +1, rng);
  DrawRoad(canvas, layout, rng);
}

}  // namespace segqat::data::scene
