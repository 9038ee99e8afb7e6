// Cars, trucks, buses and trams as boxes in perspective, with windows,
// wheels and lights.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/data/cityscapes.h"
#include "engine/data/random.h"
#include "engine/data/scene_objects.h"

namespace segqat::data::scene {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr Rgb kTyre{24, 24, 26};

Color BodyColor(VehicleKind kind, std::mt19937& rng) {
  static constexpr std::array<Rgb, 10> kCar = {{{200, 200, 205},
                                                {30, 30, 35},
                                                {235, 235, 235},
                                                {120, 120, 125},
                                                {150, 25, 30},
                                                {30, 50, 110},
                                                {20, 30, 60},
                                                {40, 80, 50},
                                                {190, 170, 130},
                                                {90, 20, 25}}};
  static constexpr std::array<Rgb, 5> kTruck = {
      {{230, 230, 228}, {180, 182, 185}, {40, 70, 140}, {170, 40, 35}, {60, 110, 60}}};
  static constexpr std::array<Rgb, 5> kBus = {
      {{235, 200, 40}, {200, 40, 40}, {235, 235, 230}, {40, 120, 80}, {60, 90, 160}}};
  static constexpr std::array<Rgb, 4> kTrain = {
      {{235, 235, 232}, {220, 190, 40}, {190, 30, 40}, {60, 110, 170}}};
  switch (kind) {
    case VehicleKind::kCar:
      break;
    case VehicleKind::kTruck:
      return Jitter(rng, Pick(rng, kTruck), 10);
    case VehicleKind::kBus:
      return Jitter(rng, Pick(rng, kBus), 10);
    case VehicleKind::kTrain:
      return Jitter(rng, Pick(rng, kTrain), 10);
  }
  return Jitter(rng, Pick(rng, kCar), 10);
}

// A box x in [x0, x1], y in [y0, y1], z in [z0, z1] and its faces.
struct Box {
  double x0, x1, y0, y1, z0, z1;
  Polygon Front(const Camera& c) const {  // the face at z0
    return Project(c, {{x0, y0, z0}, {x1, y0, z0}, {x1, y1, z0}, {x0, y1, z0}});
  }
  // The side facing the camera, if one does.
  bool HasSide() const { return x0 > 0 || x1 < 0; }
  double SideX() const { return x0 > 0 ? x0 : x1; }
  Polygon Side(const Camera& c) const { return SidePart(c, z0, z1, y0, y1); }
  Polygon SidePart(const Camera& c, double za, double zb, double ya, double yb) const {
    const double x = SideX();
    return Project(c, {{x, ya, za}, {x, ya, zb}, {x, yb, zb}, {x, yb, za}});
  }
  Polygon Top(const Camera& c) const {
    return Project(c, {{x0, y1, z0}, {x1, y1, z0}, {x1, y1, z1}, {x0, y1, z1}});
  }
  Polygon FrontPart(const Camera& c, double xa, double xb, double ya, double yb) const {
    return Project(c, {{xa, ya, z0}, {xb, ya, z0}, {xb, yb, z0}, {xa, yb, z0}});
  }
};

// Side, top (when the camera is above it) and front faces, far to near.
void DrawBox(Canvas& canvas, const Camera& cam, const Box& box, const Color& color, uint8_t id) {
  if (box.HasSide()) canvas.Fill(box.Side(cam), Shade(color, 0.82), id);
  if (box.y1 < cam.height) canvas.Fill(box.Top(cam), Shade(color, 1.1), id);
  canvas.Fill(box.Front(cam), color, id);
}

// Wheels on the visible side at the given z centres, and tyres showing under
// the front face.
void DrawWheels(Canvas& canvas, const Camera& cam, const Box& body, double radius,
                const std::vector<double>& centres, uint8_t id) {
  for (double x : {body.x0 + 0.05, body.x1 - 0.3}) {
    canvas.Fill(Project(cam, {{x, 0, body.z0 + 0.4},
                              {x + 0.25, 0, body.z0 + 0.4},
                              {x + 0.25, body.y0 + 0.1, body.z0 + 0.4},
                              {x, body.y0 + 0.1, body.z0 + 0.4}}),
                kTyre.ToColor(), id);
  }
  if (!body.HasSide()) return;
  const double x = body.SideX();
  for (double zc : centres) {
    std::vector<cv::Point3d> tyre, hub;
    for (int i = 0; i < 14; ++i) {
      const double a = 2 * kPi * i / 14;
      tyre.push_back({x, radius + radius * std::sin(a), zc + radius * std::cos(a)});
      hub.push_back({x, radius + 0.5 * radius * std::sin(a), zc + 0.5 * radius * std::cos(a)});
    }
    canvas.Fill(Project(cam, tyre), kTyre.ToColor(), id);
    canvas.Paint(Project(cam, hub), Color(120, 120, 125));
  }
}

// Lights (and a plate) on the face at z0: white headlights or red tail lights.
void DrawLights(Canvas& canvas, const Camera& cam, const Box& b, double y, bool oncoming) {
  const Color lamp = oncoming ? Color(245, 240, 215) : Color(200, 20, 25);
  const double w = std::min(0.3, (b.x1 - b.x0) * 0.18);
  canvas.Paint(b.FrontPart(cam, b.x0 + 0.08, b.x0 + 0.08 + w, y, y + 0.16), lamp);
  canvas.Paint(b.FrontPart(cam, b.x1 - 0.08 - w, b.x1 - 0.08, y, y + 0.16), lamp);
  const double xm = (b.x0 + b.x1) / 2;
  canvas.Paint(b.FrontPart(cam, xm - 0.26, xm + 0.26, b.y0 + 0.08, b.y0 + 0.2),
               Color(230, 230, 225));
}

// A band of windows along the visible side between heights ya and yb.
void DrawSideWindows(Canvas& canvas, const Camera& cam, const Box& b, double ya, double yb,
                     double pitch, const Color& glass) {
  if (!b.HasSide()) return;
  for (double z = b.z0 + 0.5; z + pitch * 0.8 < b.z1 - 0.3; z += pitch) {
    canvas.Paint(b.SidePart(cam, z, z + pitch * 0.8, ya, yb), glass);
  }
}

void DrawCar(Canvas& canvas, const Camera& cam, std::mt19937& rng, const VehicleShape& s, double x,
             double z0, bool oncoming) {
  const uint8_t id = cityscapes::kCar;
  const Color body = BodyColor(VehicleKind::kCar, rng);
  const Color glass = Jitter(rng, {38, 44, 54}, 8);
  const double belt = s.height * 0.6;
  const Box lower{x - s.width / 2, x + s.width / 2, 0.28, belt, z0, z0 + s.length};
  const double hood = oncoming ? s.length * 0.27 : s.length * 0.2;
  const Box cabin{lower.x0 + 0.12, lower.x1 - 0.12, belt,
                  s.height,        z0 + hood,       z0 + s.length * 0.72};
  DrawWheels(canvas, cam, lower, 0.32, {lower.z0 + 0.8, lower.z1 - 0.9}, id);
  DrawBox(canvas, cam, lower, body, id);
  DrawBox(canvas, cam, cabin, body, id);
  DrawSideWindows(canvas, cam, cabin, belt + 0.06, s.height - 0.07, (cabin.z1 - cabin.z0 - 0.6) / 2,
                  glass);
  canvas.Paint(cabin.FrontPart(cam, cabin.x0 + 0.08, cabin.x1 - 0.08, belt + 0.05, s.height - 0.08),
               glass);
  // The front face of the lower box was drawn over nothing of the cabin; add lights.
  DrawLights(canvas, cam, lower, belt - 0.25, oncoming);
}

void DrawTruck(Canvas& canvas, const Camera& cam, std::mt19937& rng, const VehicleShape& s,
               double x, double z0, bool oncoming) {
  const uint8_t id = cityscapes::kTruck;
  const Color cargo_color = BodyColor(VehicleKind::kTruck, rng);
  const Color cab_color = Bernoulli(rng, 0.5) ? cargo_color : BodyColor(VehicleKind::kTruck, rng);
  const double x0 = x - s.width / 2, x1 = x + s.width / 2, z1 = z0 + s.length;
  const double cab_len = 2.3, cab_h = std::min(s.height, 3.0);
  const Box cab{x0, x1, 0.5, cab_h, oncoming ? z0 : z1 - cab_len, oncoming ? z0 + cab_len : z1};
  const Box cargo{x0,
                  x1,
                  0.95,
                  s.height,
                  oncoming ? z0 + cab_len + 0.2 : z0,
                  oncoming ? z1 : z1 - cab_len - 0.2};
  const Box chassis{x0 + 0.15, x1 - 0.15, 0.45, 0.95, z0, z1};
  DrawWheels(canvas, cam, chassis, 0.5, {z0 + 1.2, z1 - 1.5, z1 - 2.6}, id);
  if (oncoming) {
    DrawBox(canvas, cam, cargo, cargo_color, id);
    DrawBox(canvas, cam, chassis, Color(40, 40, 42), id);
    DrawBox(canvas, cam, cab, cab_color, id);
    canvas.Paint(cab.FrontPart(cam, x0 + 0.12, x1 - 0.12, cab_h - 1.1, cab_h - 0.15),
                 Jitter(rng, {40, 48, 60}, 8));
    canvas.Paint(cab.FrontPart(cam, x - 0.6, x + 0.6, 0.7, 1.3), Color(45, 45, 48));
    DrawLights(canvas, cam, cab, 0.8, true);
    DrawSideWindows(canvas, cam, cab, cab_h - 1.1, cab_h - 0.2, 1.2, Color(40, 48, 60));
  } else {
    DrawBox(canvas, cam, cab, cab_color, id);
    DrawBox(canvas, cam, chassis, Color(40, 40, 42), id);
    DrawBox(canvas, cam, cargo, cargo_color, id);
    const Color seam = Shade(cargo_color, 0.7);
    canvas.PaintLine(cam.Project(x, 1.0, z0), cam.Project(x, s.height - 0.05, z0), 1.0, seam);
    for (double y = 1.4; y < s.height - 0.2; y += 0.7) {
      canvas.PaintLine(cam.Project(x0 + 0.1, y, z0), cam.Project(x1 - 0.1, y, z0), 1.0, seam);
    }
    DrawLights(canvas, cam, chassis, 0.6, false);
  }
}

void DrawBus(Canvas& canvas, const Camera& cam, std::mt19937& rng, const VehicleShape& s, double x,
             double z0, bool oncoming) {
  const uint8_t id = cityscapes::kBus;
  const Color body = BodyColor(VehicleKind::kBus, rng);
  const Color glass = Jitter(rng, {36, 42, 52}, 8);
  const Box box{x - s.width / 2, x + s.width / 2, 0.3, s.height, z0, z0 + s.length};
  DrawWheels(canvas, cam, box, 0.5, {z0 + 2.4, z0 + s.length - 3.0}, id);
  DrawBox(canvas, cam, box, body, id);
  DrawSideWindows(canvas, cam, box, 1.15, s.height - 0.45, 1.6, glass);
  if (box.HasSide()) {  // a door
    canvas.Paint(box.SidePart(cam, z0 + 0.5, z0 + 1.6, 0.4, s.height - 0.45), Shade(glass, 1.3));
  }
  if (oncoming) {
    canvas.Paint(box.FrontPart(cam, box.x0 + 0.1, box.x1 - 0.1, 0.95, s.height - 0.5), glass);
    canvas.Paint(box.FrontPart(cam, box.x0 + 0.2, box.x1 - 0.2, s.height - 0.42, s.height - 0.1),
                 Color(30, 30, 30));
    canvas.Paint(box.FrontPart(cam, x - 0.6, x + 0.6, s.height - 0.33, s.height - 0.2),
                 Color(255, 150, 30));
  } else {
    canvas.Paint(box.FrontPart(cam, box.x0 + 0.3, box.x1 - 0.3, 1.7, s.height - 0.35), glass);
    canvas.Paint(box.FrontPart(cam, x - 0.7, x + 0.7, 0.5, 1.1), Shade(body, 0.7));
  }
  DrawLights(canvas, cam, box, 0.55, oncoming);
}

constexpr std::array<Rgb, 3> kTramStripes = {{{200, 30, 40}, {30, 70, 150}, {60, 60, 60}}};

void DrawTram(Canvas& canvas, const Camera& cam, std::mt19937& rng, const VehicleShape& s, double x,
              double z0) {
  const uint8_t id = cityscapes::kTrain;
  const Color body = BodyColor(VehicleKind::kTrain, rng);
  const Color stripe = Jitter(rng, Pick(rng, kTramStripes), 10);
  const Color glass = Jitter(rng, {34, 40, 50}, 8);
  const double x0 = x - s.width / 2, x1 = x + s.width / 2, h = s.height;
  const Box box{x0, x1, 0.4, h, z0, z0 + s.length};
  // Pantograph: a lozenge of thin struts above the roof.
  const double pz = z0 + 4, stroke = std::max(1.0, canvas.MinStroke() * 0.6);
  canvas.FillLine(cam.Project(x - 0.5, h, pz), cam.Project(x, h + 0.9, pz), stroke, {50, 50, 50},
                  id);
  canvas.FillLine(cam.Project(x + 0.5, h, pz), cam.Project(x, h + 0.9, pz), stroke, {50, 50, 50},
                  id);
  canvas.FillLine(cam.Project(x - 0.8, h + 0.9, pz), cam.Project(x + 0.8, h + 0.9, pz), stroke,
                  {50, 50, 50}, id);
  DrawWheels(canvas, cam, box, 0.35, {z0 + 2, z0 + s.length - 2}, id);
  if (box.HasSide()) {
    canvas.Fill(box.Side(cam), Shade(body, 0.82), id);
    DrawSideWindows(canvas, cam, box, 1.3, h - 0.5, 1.9, glass);
    canvas.Paint(box.SidePart(cam, z0, z0 + s.length, 0.8, 1.05), stripe);
  }
  // The cab front with bevelled top corners.
  canvas.Fill(Project(cam, {{x0, 0.4, z0},
                            {x1, 0.4, z0},
                            {x1, h - 0.45, z0},
                            {x1 - 0.35, h, z0},
                            {x0 + 0.35, h, z0},
                            {x0, h - 0.45, z0}}),
              body, id);
  canvas.Paint(box.FrontPart(cam, x0 + 0.2, x1 - 0.2, 1.5, h - 0.35), glass);
  canvas.Paint(box.FrontPart(cam, x0, x1, 0.8, 1.05), stripe);
  DrawLights(canvas, cam, box, 1.15, true);
}

}  // namespace

VehicleShape RandomVehicleShape(VehicleKind kind, std::mt19937& rng) {
  switch (kind) {
    case VehicleKind::kCar:
      return {UniformReal(rng, 1.7, 1.95), UniformReal(rng, 3.8, 4.9), UniformReal(rng, 1.4, 1.7)};
    case VehicleKind::kTruck:
      return {UniformReal(rng, 2.3, 2.55), UniformReal(rng, 6.5, 10), UniformReal(rng, 3.0, 3.9)};
    case VehicleKind::kBus:
      return {UniformReal(rng, 2.45, 2.55), UniformReal(rng, 11, 15), UniformReal(rng, 2.9, 3.3)};
    case VehicleKind::kTrain:
      return {UniformReal(rng, 2.3, 2.65), UniformReal(rng, 25, 35), UniformReal(rng, 3.3, 3.6)};
  }
  return {};
}

void DrawVehicle(Canvas& canvas, const Camera& camera, std::mt19937& rng, VehicleKind kind,
                 const VehicleShape& shape, double x, double z0, bool oncoming) {
  // A soft shadow on the ground first (image only: the ground keeps its class).
  const double hw = shape.width / 2 + 0.15;
  canvas.Paint(Project(camera, {{x - hw, 0, z0 - 0.2},
                                {x + hw, 0, z0 - 0.2},
                                {x + hw, 0, z0 + shape.length},
                                {x - hw, 0, z0 + shape.length}}),
               Color(30, 30, 34));
  switch (kind) {
    case VehicleKind::kCar:
      DrawCar(canvas, camera, rng, shape, x, z0, oncoming);
      break;
    case VehicleKind::kTruck:
      DrawTruck(canvas, camera, rng, shape, x, z0, oncoming);
      break;
    case VehicleKind::kBus:
      DrawBus(canvas, camera, rng, shape, x, z0, oncoming);
      break;
    case VehicleKind::kTrain:
      DrawTram(canvas, camera, rng, shape, x, z0);
      break;
  }
}

}  // namespace segqat::data::scene
