// Pedestrians, and bicycles and motorcycles with or without riders.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/data/cityscapes.h"
#include "engine/data/random.h"
#include "engine/data/scene_objects.h"

namespace segqat::data::scene {
namespace {

Color Clothing(std::mt19937& rng) {
  static constexpr std::array<Rgb, 12> kClothes = {{{30, 30, 34},
                                                    {60, 62, 70},
                                                    {200, 200, 196},
                                                    {40, 60, 120},
                                                    {150, 30, 40},
                                                    {90, 70, 50},
                                                    {60, 100, 60},
                                                    {210, 170, 60},
                                                    {120, 60, 120},
                                                    {230, 120, 40},
                                                    {20, 40, 80},
                                                    {170, 150, 120}}};
  return Jitter(rng, Pick(rng, kClothes), 12);
}

constexpr std::array<Rgb, 4> kHair = {
    {{30, 25, 20}, {90, 60, 30}, {180, 150, 90}, {120, 120, 120}}};

Color Skin(std::mt19937& rng) {
  static constexpr std::array<Rgb, 5> kSkin = {
      {{240, 200, 170}, {210, 160, 120}, {170, 120, 85}, {110, 75, 50}, {230, 185, 150}}};
  return Jitter(rng, Pick(rng, kSkin), 8);
}

// Draws in a vertical plane at depth z: points are (dx from x, height).
struct Figure {
  Canvas& canvas;
  const Camera& cam;
  double x, z;
  uint8_t id;

  cv::Point2d P(double dx, double y) const { return cam.Project(x + dx, y, z); }
  double Px(double metres) const { return metres * cam.Scale(z); }
  void Limb(double x0, double y0, double x1, double y1, double width, const Color& c) const {
    canvas.FillLine(P(x0, y0), P(x1, y1), std::max(canvas.MinStroke() * 0.6, Px(width)), c, id);
  }
  void Disc(double dx, double y, double r, const Color& c) const {
    canvas.FillCircle(P(dx, y), std::max(canvas.MinStroke() * 0.5, Px(r)), c, id);
  }
  void Ring(double dx, double y, double r, double width, const Color& c) const {
    canvas.FillRing(P(dx, y), Px(r), std::max(canvas.MinStroke() * 0.6, Px(width)), c, id);
  }
  void Shape(const std::vector<cv::Point2d>& points, const Color& c) const {
    Polygon polygon;
    for (const cv::Point2d& p : points) polygon.push_back(P(p.x, p.y));
    canvas.Fill(polygon, c, id);
  }
};

// A seated rider: hips at (hip_x, hip_y), hands at (hand_x, hand_y), feet at
// (foot_x, foot_y); d is the heading (+1 or -1).
void DrawRider(const Figure& f, std::mt19937& rng, int d, cv::Point2d hip, cv::Point2d hand,
               cv::Point2d foot, bool helmet) {
  const Color top = Clothing(rng), legs = Clothing(rng), skin = Skin(rng);
  const cv::Point2d knee((hip.x + foot.x) / 2 + 0.25 * d, (hip.y + foot.y) / 2 + 0.1);
  f.Limb(hip.x, hip.y, knee.x, knee.y, 0.15, legs);
  f.Limb(knee.x, knee.y, foot.x, foot.y, 0.13, legs);
  const cv::Point2d shoulder(hip.x + 0.22 * d, hip.y + 0.55);
  f.Limb(hip.x, hip.y + 0.05, shoulder.x, shoulder.y, 0.32, top);
  f.Limb(shoulder.x, shoulder.y, hand.x, hand.y, 0.1, top);
  f.Disc(shoulder.x + 0.06 * d, shoulder.y + 0.2, 0.11, skin);
  if (helmet) {
    f.Disc(shoulder.x + 0.05 * d, shoulder.y + 0.24, 0.13, Jitter(rng, Clothing(rng), 20));
  }
}

void DrawBicycle(const Figure& f, std::mt19937& rng, int d, bool with_rider) {
  const Color frame = Clothing(rng);
  const Color tyre(28, 28, 30);
  const double r = 0.34;
  const cv::Point2d rear(-0.52 * d, r), front(0.52 * d, r), crank(0, 0.3);
  const cv::Point2d seat(-0.2 * d, 0.88), head(0.38 * d, 0.9), bar(0.42 * d, 1.02);
  f.Ring(rear.x, rear.y, r, 0.07, tyre);
  f.Ring(front.x, front.y, r, 0.07, tyre);
  for (const auto& [a, b] : std::vector<std::pair<cv::Point2d, cv::Point2d>>{{rear, crank},
                                                                             {rear, seat},
                                                                             {crank, seat},
                                                                             {seat, head},
                                                                             {crank, head},
                                                                             {head, front},
                                                                             {head, bar}}) {
    f.Limb(a.x, a.y, b.x, b.y, 0.045, frame);
  }
  f.Limb(seat.x - 0.1 * d, seat.y + 0.03, seat.x + 0.1 * d, seat.y + 0.03, 0.06, tyre);
  if (with_rider) {
    const Figure rider{f.canvas, f.cam, f.x, f.z, cityscapes::kRider};
    DrawRider(rider, rng, d, {seat.x, seat.y + 0.08}, bar, {crank.x + 0.05 * d, crank.y - 0.1},
              Bernoulli(rng, 0.4));
  }
}

void DrawMotorcycle(const Figure& f, std::mt19937& rng, int d, bool with_rider) {
  const Color body = Clothing(rng);
  const Color dark(32, 32, 34);
  const double r = 0.31;
  const cv::Point2d rear(-0.7 * d, r), front(0.7 * d, r);
  f.Disc(rear.x, rear.y, r, dark);
  f.Disc(front.x, front.y, r, dark);
  f.Disc(rear.x, rear.y, r * 0.55, Color(130, 130, 135));
  f.Disc(front.x, front.y, r * 0.55, Color(130, 130, 135));
  f.Shape({{-0.3 * d, 0.25}, {0.3 * d, 0.25}, {0.35 * d, 0.62}, {-0.35 * d, 0.62}}, dark);
  f.Shape({{-0.8 * d, 0.78},
           {-0.1 * d, 0.72},
           {0.4 * d, 0.68},
           {0.45 * d, 0.95},
           {0.1 * d, 0.98},
           {-0.75 * d, 0.9}},
          body);
  f.Limb(front.x, front.y, 0.5 * d, 1.05, 0.06, Color(150, 150, 155));
  f.Limb(0.45 * d, 1.05, 0.3 * d, 1.12, 0.05, dark);
  f.Disc(0.6 * d, 0.9, 0.09, Color(240, 236, 210));
  f.Limb(-0.2 * d, 0.3, -0.85 * d, 0.35, 0.07, Color(160, 160, 165));  // exhaust
  if (with_rider) {
    const Figure rider{f.canvas, f.cam, f.x, f.z, cityscapes::kRider};
    DrawRider(rider, rng, d, {-0.3 * d, 1.0}, {0.3 * d, 1.12}, {0.0, 0.4}, true);
  }
}

}  // namespace

void DrawPerson(Canvas& canvas, const Camera& camera, std::mt19937& rng, double x, double z,
                double height) {
  const Figure f{canvas, camera, x, z, cityscapes::kPerson};
  const double h = height;
  const Color top = Clothing(rng), legs = Clothing(rng), skin = Skin(rng);
  const Color hair = Jitter(rng, Pick(rng, kHair), 10);
  const double stride = UniformReal(rng, 0.0, 0.16);
  const double hip = 0.52 * h, shoulder = 0.81 * h;
  f.Limb(-0.09, hip, -0.1 - stride, 0.04, 0.15, legs);
  f.Limb(0.09, hip, 0.1 + stride, 0.04, 0.15, legs);
  f.Limb(-0.1 - stride - 0.05, 0.03, -0.1 - stride + 0.08, 0.03, 0.08, Color(25, 25, 25));
  f.Limb(0.1 + stride - 0.08, 0.03, 0.1 + stride + 0.05, 0.03, 0.08, Color(25, 25, 25));
  const bool coat = Bernoulli(rng, 0.3);
  const double hem = coat ? 0.3 * h : hip - 0.04;
  f.Shape(
      {{-0.2, shoulder}, {0.2, shoulder}, {coat ? 0.22 : 0.17, hem}, {coat ? -0.22 : -0.17, hem}},
      top);
  const double swing = UniformReal(rng, -0.1, 0.1);
  f.Limb(-0.21, shoulder - 0.03, -0.26 - swing, 0.47 * h, 0.09, top);
  f.Limb(0.21, shoulder - 0.03, 0.26 + swing, 0.47 * h, 0.09, top);
  f.Disc(-0.26 - swing, 0.45 * h, 0.05, skin);
  f.Disc(0.26 + swing, 0.45 * h, 0.05, skin);
  const double head_r = 0.062 * h;
  f.Disc(0, h - head_r - 0.02, head_r * 1.05, hair);
  f.Disc(0, h - head_r - 0.05, head_r, skin);
  if (Bernoulli(rng, 0.25)) {  // a bag
    f.Shape({{0.24, 0.62 * h}, {0.42, 0.62 * h}, {0.42, 0.42 * h}, {0.24, 0.42 * h}},
            Clothing(rng));
  }
}

void DrawTwoWheeler(Canvas& canvas, const Camera& camera, std::mt19937& rng, CycleKind kind,
                    double x, double z, int direction, bool with_rider) {
  const int d = direction >= 0 ? 1 : -1;
  if (kind == CycleKind::kBicycle) {
    DrawBicycle({canvas, camera, x, z, cityscapes::kBicycle}, rng, d, with_rider);
  } else {
    DrawMotorcycle({canvas, camera, x, z, cityscapes::kMotorcycle}, rng, d, with_rider);
  }
}

}  // namespace segqat::data::scene
