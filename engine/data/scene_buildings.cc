// Buildings: rows of facades with windows along both sides of the street,
// and a row of buildings and trees across its far end.
#include <algorithm>
#include <array>
#include <vector>

#include "engine/data/cityscapes.h"
#include "engine/data/random.h"
#include "engine/data/scene_background.h"
#include "engine/data/scene_objects.h"

namespace segqat::data::scene {
namespace {

using cityscapes::kBuilding;

bool Visible(const Polygon& polygon, cv::Size size, double min_extent) {
  double x0 = 1e18, x1 = -1e18, y0 = 1e18, y1 = -1e18;
  for (const cv::Point2d& p : polygon) {
    x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
    y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
  }
  return x1 >= 0 && y1 >= 0 && x0 < size.width && y0 < size.height && x1 - x0 >= min_extent &&
         y1 - y0 >= min_extent;
}

Color BuildingColor(std::mt19937& rng) {
  static constexpr std::array<Rgb, 10> kColors = {{{200, 186, 160},
                                                   {140, 140, 142},
                                                   {214, 212, 205},
                                                   {150, 84, 62},
                                                   {205, 186, 122},
                                                   {92, 92, 98},
                                                   {120, 130, 150},
                                                   {176, 150, 130},
                                                   {160, 168, 160},
                                                   {230, 220, 196}}};
  return Jitter(rng, Pick(rng, kColors), 14);
}

// Windows (and a shop front) on one face: `face(u0, u1, y0, y1)` gives the
// polygon of the span [u0, u1] along the face and [y0, y1] in height.
template <typename Face>
void DrawWindows(Canvas& canvas, std::mt19937& rng, const Face& face, double u_begin, double u_end,
                 double height, const Color& wall) {
  static constexpr std::array<Rgb, 5> kGlass = {
      {{45, 55, 72}, {62, 72, 88}, {34, 38, 46}, {118, 138, 160}, {88, 80, 70}}};
  const Color glass = Jitter(rng, Pick(rng, kGlass), 10);
  const double floor_h = UniformReal(rng, 3.0, 3.6);
  const double column = UniformReal(rng, 2.2, 3.6);
  const double width = column * UniformReal(rng, 0.35, 0.6);
  const double win_h = floor_h * UniformReal(rng, 0.4, 0.6);
  const double sill = UniformReal(rng, 0.6, 1.0);
  const bool bands = Bernoulli(rng, 0.35);
  const bool shop = Bernoulli(rng, 0.5);
  const cv::Size size = canvas.size();

  if (shop) {
    const Polygon front = face(u_begin + 0.5, u_end - 0.5, 0.3, 2.7);
    if (Visible(front, size, 1.0)) canvas.Paint(front, Shade(glass, 0.8));
  }
  for (double base = shop ? floor_h : 0.0; base + sill + win_h < height - 0.4; base += floor_h) {
    if (bands) {
      const Polygon band = face(u_begin, u_end, base - 0.12, base + 0.12);
      if (Visible(band, size, 0.5)) canvas.Paint(band, Shade(wall, 0.8));
    }
    for (double u = u_begin + column / 2; u + width / 2 < u_end; u += column) {
      const Polygon window = face(u - width / 2, u + width / 2, base + sill, base + sill + win_h);
      if (!Visible(window, size, 1.2)) continue;
      const Color color =
          Bernoulli(rng, 0.07) ? Jitter(rng, {225, 205, 150}, 15) : Jitter(rng, glass, 12);
      canvas.Paint(window, color);
    }
  }
  const Polygon cornice = face(u_begin, u_end, height - 0.35, height);
  if (Visible(cornice, size, 0.5)) canvas.Paint(cornice, Shade(wall, 0.7));
}

// Buildings and trees across the street end, facing the camera.
void DrawBackdrop(Canvas& canvas, const StreetLayout& layout, std::mt19937& rng) {
  const Camera& cam = layout.camera;
  const double z = layout.far_z;
  const double half = z * (std::max(cam.cx, canvas.size().width - cam.cx) / cam.focal + 0.1);
  for (double x = -half; x < half;) {
    const double width = UniformReal(rng, 6, 20);
    if (Bernoulli(rng, 0.3)) {
      DrawTree(canvas, cam, rng, x + width / 2, z, UniformReal(rng, 4, 7), width / 2);
    } else {
      const double height = UniformReal(rng, 5, 18);
      const Color wall = BuildingColor(rng);
      canvas.Fill(FrontQuad(cam, z, x, x + width, 0, height), wall, kBuilding);
      auto face = [&](double u0, double u1, double y0, double y1) {
        return FrontQuad(cam, z, u0, u1, y0, y1);
      };
      if (cam.Scale(z) >= 2.0) DrawWindows(canvas, rng, face, x, x + width, height, wall);
    }
    x += width;
  }
}

struct Block {
  double z0, z1;
  bool gap;
};

// One row of buildings along the facade of `side`, drawn far to near.
void DrawBuildingRow(Canvas& canvas, const StreetLayout& layout, int side, std::mt19937& rng) {
  std::vector<Block> blocks;
  for (double z = layout.near_z; z < layout.far_z;) {
    const bool gap = z > 12 && Bernoulli(rng, 0.12);
    const double length = gap ? UniformReal(rng, 8, 16) : UniformReal(rng, 8, 30);
    blocks.push_back({z, std::min(z + length, layout.far_z), gap});
    z += length;
  }
  const Camera& cam = layout.camera;
  const double x = layout.Facade(side);
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) {
    const Block& b = *it;
    if (b.gap) {
      const double zt = (b.z0 + b.z1) / 2;
      DrawTree(canvas, cam, rng, x + side * UniformReal(rng, 3, 8), zt, UniformReal(rng, 4, 6),
               UniformReal(rng, 2.5, 4.0));
      continue;
    }
    const double height = UniformReal(rng, 7, 26);
    const Color wall = BuildingColor(rng);
    const double depth = x + side * 15;
    canvas.Fill(FrontQuad(cam, b.z0, std::min(x, depth), std::max(x, depth), 0, height),
                Shade(wall, 1.05), kBuilding);
    canvas.Fill(SideQuad(cam, x, b.z0, b.z1, 0, height), Shade(wall, 0.88), kBuilding);
    auto face = [&](double u0, double u1, double y0, double y1) {
      return SideQuad(cam, x, u0, u1, y0, y1);
    };
    DrawWindows(canvas, rng, face, b.z0, b.z1, height, Shade(wall, 0.88));
  }
}

}  // namespace

void DrawBuildings(Canvas& canvas, const StreetLayout& layout, std::mt19937& rng) {
  DrawBackdrop(canvas, layout, rng);
  DrawBuildingRow(canvas, layout, -1, rng);
  DrawBuildingRow(canvas, layout, +1, rng);
}

}  // namespace segqat::data::scene
