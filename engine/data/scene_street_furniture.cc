// Poles, traffic lights, traffic signs, walls and fences.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/data/cityscapes.h"
#include "engine/data/random.h"
#include "engine/data/scene_objects.h"

namespace segqat::data::scene {
namespace {

using cityscapes::kFence;
using cityscapes::kPole;
using cityscapes::kTrafficLight;
using cityscapes::kTrafficSign;
using cityscapes::kWall;

constexpr double kPi = 3.14159265358979323846;

// A regular polygon (circle approximation when n is large) of radius r
// metres in the plane z = const, centred at c, rotated by `phase` radians.
Polygon RegularPolygon(const Camera& cam, cv::Point3d c, double r, int n, double phase) {
  std::vector<cv::Point3d> points;
  for (int i = 0; i < n; ++i) {
    const double a = phase + 2 * kPi * i / n;
    points.push_back({c.x + r * std::cos(a), c.y + r * std::sin(a), c.z});
  }
  return Project(cam, points);
}

}  // namespace

void DrawPole(Canvas& canvas, const Camera& camera, std::mt19937& rng, PoleKind kind, double x,
              double z, int toward_road) {
  static constexpr std::array<Rgb, 5> kPoleColors = {
      {{128, 128, 130}, {150, 150, 148}, {70, 72, 74}, {40, 62, 50}, {110, 104, 96}}};
  const Color color = Jitter(rng, Pick(rng, kPoleColors), 8);
  const double scale = camera.Scale(z);
  const double width = std::max(canvas.MinStroke(), UniformReal(rng, 0.12, 0.22) * scale);
  double top = 3.0;
  switch (kind) {
    case PoleKind::kPlain:
      top = UniformReal(rng, 2.5, 4.0);
      break;
    case PoleKind::kLamp:
      top = UniformReal(rng, 6.5, 9.0);
      break;
    case PoleKind::kTrafficLight:
      top = UniformReal(rng, 2.6, 3.4);
      break;
    case PoleKind::kTrafficLightArm:
      top = UniformReal(rng, 5.0, 6.5);
      break;
    case PoleKind::kSign:
      top = UniformReal(rng, 2.2, 3.0);
      break;
  }
  canvas.FillLine(camera.Project(x, 0, z), camera.Project(x, top, z), width, color, kPole);

  switch (kind) {
    case PoleKind::kPlain:
      break;
    case PoleKind::kLamp: {
      const cv::Point3d end(x + toward_road * UniformReal(rng, 1.2, 2.2), top + 0.2, z);
      canvas.FillLine(camera.Project(x, top, z), camera.Project(end), width * 0.8, color, kPole);
      canvas.Fill(Project(camera, {{end.x - 0.35, end.y, z},
                                   {end.x + 0.35, end.y, z},
                                   {end.x + 0.25, end.y - 0.18, z},
                                   {end.x - 0.25, end.y - 0.18, z}}),
                  Shade(color, 0.8), kPole);
      break;
    }
    case PoleKind::kTrafficLight:
      DrawTrafficLight(canvas, camera, rng, {x, top + 1.0, z});
      if (Bernoulli(rng, 0.4)) {
        DrawTrafficSign(canvas, camera, rng, {x, top - 0.6, z}, UniformReal(rng, 0.55, 0.75));
      }
      break;
    case PoleKind::kTrafficLightArm: {
      const double end = x + toward_road * UniformReal(rng, 2.0, 4.5);
      canvas.FillLine(camera.Project(x, top, z), camera.Project(end, top, z), width * 0.8, color,
                      kPole);
      DrawTrafficLight(canvas, camera, rng, {end, top, z});
      if (Bernoulli(rng, 0.5)) DrawTrafficLight(canvas, camera, rng, {x, 3.6, z});
      break;
    }
    case PoleKind::kSign:
      DrawTrafficSign(canvas, camera, rng, {x, top, z}, UniformReal(rng, 0.6, 0.9));
      if (Bernoulli(rng, 0.3)) {
        DrawTrafficSign(canvas, camera, rng, {x, top - 0.75, z}, UniformReal(rng, 0.5, 0.7));
      }
      break;
  }
}

void DrawTrafficLight(Canvas& canvas, const Camera& camera, std::mt19937& rng, cv::Point3d top) {
  const double z = top.z;
  const double min_half = canvas.MinStroke() * 0.75 / camera.Scale(z);
  const double half_w = std::max(0.17, min_half);
  const double height = std::max(0.95, 5.5 * half_w);
  const Color housing =
      Bernoulli(rng, 0.25) ? Jitter(rng, {176, 150, 44}, 12) : Jitter(rng, {36, 36, 38}, 8);
  canvas.Fill(Project(camera, {{top.x - half_w, top.y, z},
                               {top.x + half_w, top.y, z},
                               {top.x + half_w, top.y - height, z},
                               {top.x - half_w, top.y - height, z}}),
              housing, kTrafficLight);
  if (Bernoulli(rng, 0.3)) return;  // seen from behind: a plain housing
  static constexpr std::array<Rgb, 3> kLit = {{{255, 40, 30}, {255, 196, 40}, {60, 255, 130}}};
  const int lit = UniformInt(rng, 3);
  for (int i = 0; i < 3; ++i) {
    const double y = top.y - height * (i + 0.5) / 3;
    const Color color = i == lit ? kLit[i].ToColor() : Shade(kLit[i].ToColor(), 0.25);
    canvas.PaintCircle(camera.Project(top.x, y, z), half_w * 0.65 * camera.Scale(z), color);
  }
}

void DrawTrafficSign(Canvas& canvas, const Camera& camera, std::mt19937& rng, cv::Point3d center,
                     double size) {
  const double r = std::max(size / 2, canvas.MinStroke() * 1.2 / camera.Scale(center.z));
  const Color white = Jitter(rng, {236, 236, 232}, 8);
  const Color red = Jitter(rng, {200, 30, 35}, 12);
  const Color blue = Jitter(rng, {30, 80, 170}, 12);
  const double px = camera.Scale(center.z);
  switch (UniformInt(rng, 5)) {
    case 0:  // prohibition: red ring, white disc, maybe a number
      canvas.Fill(RegularPolygon(camera, center, r, 24, 0), red, kTrafficSign);
      canvas.Paint(RegularPolygon(camera, center, r * 0.72, 24, 0), white);
      if (r * px > 6) {
        canvas.Paint(RegularPolygon(camera, center, r * 0.3, 4, kPi / 4),
                     Jitter(rng, {20, 20, 20}, 5));
      }
      break;
    case 1: {  // mandatory: blue disc with a white arrow
      canvas.Fill(RegularPolygon(camera, center, r, 24, 0), blue, kTrafficSign);
      canvas.Paint(RegularPolygon(camera, center, r * 0.5, 3, kPi / 2), white);
      break;
    }
    case 2:  // warning: red triangle with a white centre
      canvas.Fill(RegularPolygon(camera, center, r * 1.1, 3, kPi / 2), red, kTrafficSign);
      canvas.Paint(RegularPolygon(camera, center, r * 0.6, 3, kPi / 2), white);
      break;
    case 3:  // information: blue square with a white panel
      canvas.Fill(RegularPolygon(camera, center, r * 1.15, 4, kPi / 4), blue, kTrafficSign);
      canvas.Paint(RegularPolygon(camera, center, r * 0.55, 4, kPi / 4), white);
      break;
    default:  // priority road: yellow diamond on white
      canvas.Fill(RegularPolygon(camera, center, r * 1.1, 4, 0), white, kTrafficSign);
      canvas.Paint(RegularPolygon(camera, center, r * 0.7, 4, 0), Jitter(rng, {240, 190, 30}, 10));
      break;
  }
}

void DrawWall(Canvas& canvas, const Camera& camera, std::mt19937& rng, double x, double z0,
              double z1, double height) {
  static constexpr std::array<Rgb, 5> kWallColors = {
      {{165, 160, 150}, {128, 124, 120}, {142, 86, 66}, {190, 180, 160}, {104, 108, 112}}};
  const Color color = Jitter(rng, Pick(rng, kWallColors), 10);
  const double thickness = 0.3;
  canvas.Fill(Project(camera, {{x - thickness / 2, 0, z0},
                               {x + thickness / 2, 0, z0},
                               {x + thickness / 2, height, z0},
                               {x - thickness / 2, height, z0}}),
              Shade(color, 1.08), kWall);
  canvas.Fill(SideQuad(camera, x, z0, z1, 0, height), color, kWall);
  // Block joints: courses along the wall while they are a few pixels apart.
  const double course = UniformReal(rng, 0.25, 0.5);
  const Color joint = Shade(color, 0.78);
  const double z_far = std::min(z1, camera.focal * course / 3.0);
  for (double y = course; y < height - 0.05; y += course) {
    canvas.PaintLine(camera.Project(x, y, z0), camera.Project(x, y, std::max(z0, z_far)), 1.0,
                     joint);
  }
  const double block = course * UniformReal(rng, 1.6, 2.4);
  for (double z = z0 + block; z < z1; z += block) {
    if (camera.Scale(z) * block < 5) break;
    canvas.PaintLine(camera.Project(x, 0, z), camera.Project(x, height, z), 1.0, joint);
  }
  canvas.Paint(SideQuad(camera, x, z0, z1, height - 0.12, height), Shade(color, 1.2));
}

void DrawFence(Canvas& canvas, const Camera& camera, std::mt19937& rng, double x, double z0,
               double z1, double height) {
  static constexpr std::array<Rgb, 5> kFenceColors = {
      {{120, 88, 60}, {60, 88, 64}, {160, 160, 160}, {84, 84, 88}, {170, 140, 100}}};
  const Color color = Jitter(rng, Pick(rng, kFenceColors), 10);
  canvas.Fill(SideQuad(camera, x, z0, z1, 0.05, height), color, kFence);
  // Slats or bars: vertical lines while they are a few pixels apart.
  const double pitch = UniformReal(rng, 0.12, 0.25);
  const Color line = Shade(color, Bernoulli(rng, 0.5) ? 0.6 : 1.35);
  for (double z = z0 + pitch; z < z1; z += pitch) {
    if (camera.Scale(z) * pitch < 3) break;
    canvas.PaintLine(camera.Project(x, 0.08, z), camera.Project(x, height - 0.05, z), 1.0, line);
  }
  // Rails and posts.
  for (double y : {0.25, height - 0.15}) {
    canvas.Paint(SideQuad(camera, x, z0, z1, y - 0.05, y + 0.05), Shade(color, 0.75));
  }
  const double post_every = UniformReal(rng, 2.0, 2.8);
  for (double z = z0; z < z1; z += post_every) {
    const double w = std::max(1.0, 0.1 * camera.Scale(z));
    canvas.PaintLine(camera.Project(x, 0.05, z), camera.Project(x, height, z), w,
                     Shade(color, 0.65));
  }
}

}  // namespace segqat::data::scene
