#include "engine/data/scene_planner.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

#include "engine/data/cityscapes.h"
#include "engine/data/random.h"
#include "engine/data/scene_objects.h"

namespace segqat::data::scene {
namespace {

namespace cs = cityscapes;

// Where a planned object stands and what it covers.
struct Placement {
  double x0, x1, z0, z1;  // ground footprint, metres
  double y0, y1;          // height range, metres
  int layer;              // 0: behind the sidewalk edge, 1: along it, 2: sidewalks and road
  bool solid = true;      // its footprint keeps other objects out
};

class ScenePlanner {
 public:
  ScenePlanner(cv::Size size, std::mt19937& rng, const std::vector<uint8_t>& required)
      : size_(size), rng_(rng), required_(required), layout_(RandomLayout(size, rng)) {}

  ScenePlan Plan() &&;

 private:
  // An object's image box and its place in the drawing order.
  struct Drawn {
    cv::Rect2d box;
    int layer;
    double z;
    // Whether this is drawn after `other` (and so may cover it).
    bool After(const Drawn& other) const {
      return layer > other.layer || (layer == other.layer && z < other.z);
    }
    // Whether this, drawn after `other`, would cover much of it.
    bool Hides(const Drawn& other) const {
      return After(other) && (box & other.box).area() > 0.3 * other.box.area();
    }
  };
  using DrawFn = std::function<void(Canvas&, const Camera&, std::mt19937&)>;

  bool Required(uint8_t id) const {
    return std::find(required_.begin(), required_.end(), id) != required_.end();
  }
  // The nearest depth at which x appears at least margin_px inside the image
  // and the ground under it is above the bottom row.
  double VisibleZ(double x, double margin_px) const;
  cv::Rect2d ImageBox(const Placement& p) const;
  // Plans `draw` unless p's footprint overlaps a solid one or p would hide
  // much of a guarded object. With guard (a required class), p must also be
  // in view and not hidden by what is planned already, and is protected from
  // what is planned later.
  bool Place(const Placement& p, bool guard, DrawFn draw);
  int RandomSide() { return Bernoulli(rng_, 0.5) ? 1 : -1; }

  bool PlanVehicle(VehicleKind kind, bool required);
  bool PlanRiding(CycleKind kind, bool required);
  void PlanParked(CycleKind kind);
  void PlanPerson(double x, double z);
  void PlanPole(PoleKind kind, bool guard);
  void PlanTree();
  void PlanHedge();
  void PlanAlongWalk(bool wall, int side, bool required);
  void PlanRequired();
  void PlanOptional();

  const cv::Size size_;
  std::mt19937& rng_;
  const std::vector<uint8_t> required_;
  StreetLayout layout_;
  std::vector<PlannedObject> planned_;
  std::vector<Placement> solids_;
  std::vector<Drawn> drawn_;    // everything planned
  std::vector<Drawn> guarded_;  // what must stay visible
};

double ScenePlanner::VisibleZ(double x, double margin_px) const {
  const Camera& cam = layout_.camera;
  const double room = x >= 0 ? size_.width - margin_px - cam.cx : cam.cx - margin_px;
  const double lateral = room > 1 ? cam.focal * std::abs(x) / room : 1e3;
  return std::max(lateral, cam.GroundDepthAtRow(size_.height - 1) + 0.3);
}

cv::Rect2d ScenePlanner::ImageBox(const Placement& p) const {
  double u0 = 1e9, u1 = -1e9, v0 = 1e9, v1 = -1e9;
  for (double x : {p.x0, p.x1}) {
    for (double y : {p.y0, p.y1}) {
      for (double z : {p.z0, p.z1}) {
        const cv::Point2d q = layout_.camera.Project(x, y, std::max(z, 0.5));
        u0 = std::min(u0, q.x), u1 = std::max(u1, q.x);
        v0 = std::min(v0, q.y), v1 = std::max(v1, q.y);
      }
    }
  }
  return cv::Rect2d(u0, v0, u1 - u0, v1 - v0) & cv::Rect2d(0, 0, size_.width, size_.height);
}

bool ScenePlanner::Place(const Placement& p, bool guard, DrawFn draw) {
  if (p.solid) {
    for (const Placement& o : solids_) {
      if (p.x0 < o.x1 && o.x0 < p.x1 && p.z0 < o.z1 && o.z0 < p.z1) return false;
    }
  }
  const Drawn drawn{ImageBox(p), p.layer, p.z0};
  for (const Drawn& g : guarded_) {
    if (drawn.Hides(g)) return false;
  }
  if (guard) {
    if (drawn.box.area() <= 0) return false;
    for (const Drawn& o : drawn_) {
      if (o.Hides(drawn)) return false;
    }
    guarded_.push_back(drawn);
  }
  if (p.solid) solids_.push_back(p);
  drawn_.push_back(drawn);
  planned_.push_back({p.layer, p.z0, Draw64(rng_), std::move(draw)});
  return true;
}

bool ScenePlanner::PlanVehicle(VehicleKind kind, bool required) {
  const double l = layout_.road_left, r = layout_.road_right;
  const int lanes = std::max(2, static_cast<int>(std::lround((r - l) / 3.3)));
  const double lane_w = (r - l) / lanes;
  const VehicleShape shape = RandomVehicleShape(kind, rng_);
  if (kind == VehicleKind::kTrain) {
    layout_.rails = true;
    layout_.rails_x = (l + r) / 2;
  }
  for (int attempt = 0; attempt < 40; ++attempt) {
    double x = l + lane_w * (UniformInt(rng_, lanes) + 0.5) + UniformReal(rng_, -0.3, 0.3);
    if (kind == VehicleKind::kTrain) x = layout_.rails_x;
    if (kind == VehicleKind::kCar && Bernoulli(rng_, 0.4)) {  // parked at a curb
      x = Bernoulli(rng_, 0.5) ? l + shape.width / 2 + 0.25 : r - shape.width / 2 - 0.25;
    }
    const bool own_lane = std::abs(x) < lane_w / 2;
    const double z_min = std::max(VisibleZ(x, 10), own_lane ? 7.0 : 5.0);
    const double z_max = z_min + (required ? 14 : kind == VehicleKind::kCar ? 50 : 35);
    const double z0 = UniformReal(rng_, z_min, z_max);
    const bool oncoming = x < (l + r) / 2 - 0.2;
    const Placement p{x - shape.width / 2 - 0.3,
                      x + shape.width / 2 + 0.3,
                      z0 - 1.0,
                      z0 + shape.length + 1.0,
                      0,
                      shape.height,
                      2};
    if (Place(p, required, [=](Canvas& c, const Camera& camera, std::mt19937& g) {
          DrawVehicle(c, camera, g, kind, shape, x, z0, oncoming);
        })) {
      return true;
    }
  }
  return false;
}

bool ScenePlanner::PlanRiding(CycleKind kind, bool required) {
  const double l = layout_.road_left, r = layout_.road_right;
  for (int attempt = 0; attempt < 40; ++attempt) {
    const double x = UniformReal(rng_, l + 1.2, r - 1.2);
    const double z_min = std::max(VisibleZ(x, 20), 6.0);
    const double z = UniformReal(rng_, z_min, z_min + (required ? 10 : 22));
    const int direction = RandomSide();
    if (Place({x - 1.1, x + 1.1, z - 0.5, z + 0.5, 0, 1.9, 2}, required,
              [=](Canvas& c, const Camera& camera, std::mt19937& g) {
                DrawTwoWheeler(c, camera, g, kind, x, z, direction, true);
              })) {
      return true;
    }
  }
  return false;
}

void ScenePlanner::PlanParked(CycleKind kind) {
  const int side = RandomSide();
  const double x = (layout_.WalkInner(side) + layout_.WalkEdge(side)) / 2;
  const double z = UniformReal(rng_, VisibleZ(x, 20), VisibleZ(x, 20) + 15);
  const int direction = RandomSide();
  Place({x - 1.0, x + 1.0, z - 0.4, z + 0.4, 0, 1.1, 2}, false,
        [=](Canvas& c, const Camera& camera, std::mt19937& g) {
          DrawTwoWheeler(c, camera, g, kind, x, z, direction, false);
        });
}

void ScenePlanner::PlanPerson(double x, double z) {
  const double height =
      Bernoulli(rng_, 0.1) ? UniformReal(rng_, 1.1, 1.35) : UniformReal(rng_, 1.55, 1.95);
  Place({x - 0.35, x + 0.35, z - 0.35, z + 0.35, 0, height, 2}, false,
        [=](Canvas& c, const Camera& camera, std::mt19937& g) {
          DrawPerson(c, camera, g, x, z, height);
        });
}

void ScenePlanner::PlanPole(PoleKind kind, bool guard) {
  for (int attempt = 0; attempt < 10; ++attempt) {
    const int side = RandomSide();
    const double x = layout_.Curb(side) + side * UniformReal(rng_, 0.35, 0.7);
    // Far enough that the lights and signs (up to about 5 m) are in the picture.
    const Camera& cam = layout_.camera;
    const double top_z = cam.focal * (5.0 - cam.height) / std::max(cam.horizon - 4, 1.0);
    const double z_min = std::max(VisibleZ(x, 12) + 1, top_z);
    const double z = UniformReal(rng_, z_min, std::max(z_min + 5, 40.0));
    // Guard the lights and signs at the top, not the whole pole.
    if (Place({x - 0.3, x + 0.3, z - 0.25, z + 0.25, 2.0, 4.5, 2}, guard,
              [=](Canvas& c, const Camera& camera, std::mt19937& g) {
                DrawPole(c, camera, g, kind, x, z, -side);
              })) {
      return;
    }
  }
}

void ScenePlanner::PlanTree() {
  const int side = RandomSide();
  const bool verge = layout_.Grass(side);
  double x = layout_.Curb(side) + side * UniformReal(rng_, 0.9, 1.4);  // a tree pit
  if (layout_.Strip(side) > 0) x = layout_.Curb(side) + side * layout_.Strip(side) / 2;
  if (verge) x = (layout_.WalkEdge(side) + layout_.Facade(side)) / 2;
  const double z = UniformReal(rng_, VisibleZ(x, 0), VisibleZ(x, 0) + 45);
  const double canopy_y = UniformReal(rng_, 3.5, 6.0), canopy_r = UniformReal(rng_, 1.5, 3.0);
  Place({x - canopy_r, x + canopy_r, z - 0.5, z + 0.5, 0, canopy_y + canopy_r, verge ? 0 : 2},
        false, [=](Canvas& c, const Camera& camera, std::mt19937& g) {
          DrawTree(c, camera, g, x, z, canopy_y, canopy_r);
        });
}

void ScenePlanner::PlanHedge() {
  const int side = RandomSide();
  const double x = layout_.Facade(side) - side * 0.6;
  const double z0 = std::max(2.0, VisibleZ(x, 0) + UniformReal(rng_, -5, 10));
  const double z1 = z0 + UniformReal(rng_, 8, 30);
  const double height = UniformReal(rng_, 0.8, 1.6);
  Placement p{x - 0.5, x + 0.5, z0, z1, 0, height, 0};
  p.solid = false;
  Place(p, false, [=](Canvas& c, const Camera& camera, std::mt19937& g) {
    DrawHedge(c, camera, g, x, z0, z1, height);
  });
}

void ScenePlanner::PlanAlongWalk(bool wall, int side, bool required) {
  const double x = layout_.WalkEdge(side) + side * 0.15;
  const double zv = VisibleZ(x, 25);
  const double z0 = std::max(2.0, zv - UniformReal(rng_, 0, required ? 4 : 10));
  const double z1 = zv + UniformReal(rng_, required ? 12 : 6, 35);
  const double height = wall ? UniformReal(rng_, 0.9, 2.4) : UniformReal(rng_, 1.0, 2.0);
  Placement p{x - 0.2, x + 0.2, z0, z1, 0, height, 1};
  p.solid = false;
  Place(p, required, [=](Canvas& c, const Camera& camera, std::mt19937& g) {
    if (wall) {
      DrawWall(c, camera, g, x, z0, z1, height);
    } else {
      DrawFence(c, camera, g, x, z0, z1, height);
    }
  });
}

// Required classes first, so they get free ground and guard their view.
void ScenePlanner::PlanRequired() {
  if (Required(cs::kTrain)) PlanVehicle(VehicleKind::kTrain, true);
  if (Required(cs::kBus)) PlanVehicle(VehicleKind::kBus, true);
  if (Required(cs::kTruck)) PlanVehicle(VehicleKind::kTruck, true);
  const bool bicycle = Required(cs::kBicycle);
  const bool motorcycle = Required(cs::kMotorcycle);
  if (bicycle) PlanRiding(CycleKind::kBicycle, true);
  if (motorcycle) PlanRiding(CycleKind::kMotorcycle, true);
  if (Required(cs::kRider) && !bicycle && !motorcycle) {
    PlanRiding(Bernoulli(rng_, 0.5) ? CycleKind::kBicycle : CycleKind::kMotorcycle, true);
  }
  const int side = RandomSide();
  if (Required(cs::kWall)) PlanAlongWalk(true, side, true);
  if (Required(cs::kFence)) PlanAlongWalk(false, Required(cs::kWall) ? -side : side, true);
}

void ScenePlanner::PlanOptional() {
  PlanPole(Bernoulli(rng_, 0.5) ? PoleKind::kTrafficLight : PoleKind::kTrafficLightArm, true);
  PlanPole(PoleKind::kSign, true);
  static constexpr std::array<PoleKind, 5> kOthers = {
      PoleKind::kLamp, PoleKind::kSign, PoleKind::kPlain, PoleKind::kTrafficLight, PoleKind::kLamp};
  for (int i = UniformIntIn(rng_, 1, 4); i > 0; --i) PlanPole(kOthers[UniformInt(rng_, 5)], false);

  if (!Required(cs::kWall) && Bernoulli(rng_, 0.4)) PlanAlongWalk(true, RandomSide(), false);
  if (!Required(cs::kFence) && Bernoulli(rng_, 0.4)) PlanAlongWalk(false, RandomSide(), false);
  if (!Required(cs::kTrain) && Bernoulli(rng_, 0.12)) PlanVehicle(VehicleKind::kTrain, false);
  if (!Required(cs::kBus) && Bernoulli(rng_, 0.25)) PlanVehicle(VehicleKind::kBus, false);
  if (!Required(cs::kTruck) && Bernoulli(rng_, 0.3)) PlanVehicle(VehicleKind::kTruck, false);
  for (int i = UniformIntIn(rng_, 2, 6); i > 0; --i) PlanVehicle(VehicleKind::kCar, false);
  if (Bernoulli(rng_, 0.3)) PlanRiding(CycleKind::kBicycle, false);
  if (Bernoulli(rng_, 0.2)) PlanRiding(CycleKind::kMotorcycle, false);
  if (Bernoulli(rng_, 0.25)) PlanParked(CycleKind::kBicycle);
  if (Bernoulli(rng_, 0.12)) PlanParked(CycleKind::kMotorcycle);

  for (int i = UniformIntIn(rng_, 2, 7); i > 0; --i) {
    const int side = RandomSide();
    const double a = layout_.WalkInner(side) + side * 0.5;
    const double b = layout_.WalkEdge(side) - side * 0.4;
    const double x = UniformReal(rng_, std::min(a, b), std::max(a, b));
    const double z_min = VisibleZ(x, 12);
    PlanPerson(x, UniformReal(rng_, z_min, z_min + 30));
  }
  if (layout_.crosswalk && Bernoulli(rng_, 0.6)) {
    for (int i = UniformIntIn(rng_, 1, 2); i > 0; --i) {
      PlanPerson(UniformReal(rng_, layout_.road_left + 0.5, layout_.road_right - 0.5),
                 layout_.crosswalk_z + UniformReal(rng_, 0.5, 3.0));
    }
  }
  for (int i = UniformIntIn(rng_, 2, 6); i > 0; --i) PlanTree();
  if (Bernoulli(rng_, 0.35)) PlanHedge();
}

ScenePlan ScenePlanner::Plan() && {
  PlanRequired();
  PlanOptional();
  std::stable_sort(planned_.begin(), planned_.end(),
                   [](const PlannedObject& a, const PlannedObject& b) {
                     return a.layer != b.layer ? a.layer < b.layer : a.z > b.z;
                   });
  return ScenePlan{layout_, std::move(planned_)};
}

}  // namespace

ScenePlan PlanScene(cv::Size size, std::mt19937& rng, const std::vector<uint8_t>& required) {
  return ScenePlanner(size, rng, required).Plan();
}

}  // namespace segqat::data::scene
